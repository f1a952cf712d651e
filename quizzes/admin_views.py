"""The admin views of quizzes: question banks and quizzes, scoped like courses.

A trainer sees the questions and quizzes of the courses she may use (courses.permissions) and
changes or deletes only those of the courses she may change; anything else is a 404."""

from django.http import Http404
from wagtail.admin.views import generic
from wagtail.admin.views.generic.base import BaseListingView
from wagtail.admin.viewsets.model import ModelViewSet

from members import access


class CourseScopedMixin:
    def scope(self, queryset):
        condition = access.usable_content_q(self.request.user, "course__owner_organization")
        return queryset if condition is None else queryset.filter(condition)

    def get_base_queryset(self):
        queryset = super().get_base_queryset()
        return self.scope(queryset) if queryset.model is self.model else queryset

    def get_queryset(self):
        if isinstance(self, BaseListingView):
            return super().get_queryset()
        return self.scope(self.model._default_manager.all())

    def get_object(self, *args, **kwargs):
        obj = super().get_object(*args, **kwargs)
        if not self.scope(self.model._default_manager.filter(pk=obj.pk)).exists():
            raise Http404
        changing = isinstance(self, generic.EditView | generic.DeleteView)
        if changing and not access.may_change_content(
            self.request.user, obj.course.owner_organization
        ):
            raise Http404
        return obj


class CourseScopedModelViewSet(ModelViewSet):
    def construct_view(self, view_class, **kwargs):
        scoped = type(view_class.__name__, (CourseScopedMixin, view_class), {})
        return super().construct_view(scoped, **kwargs)
