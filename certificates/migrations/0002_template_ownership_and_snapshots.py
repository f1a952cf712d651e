"""Certificate templates belong to the level that made them, and issued certificates keep
what they were issued with.

Existing templates become the city's (the first root of the organisation tree). Existing
certificates get a snapshot of their template as it is now: the best record there is of what
they printed; from here on each issue takes its own.
"""

import hashlib
import logging
import os

import django.db.models.deletion
from django.core.files.base import ContentFile
from django.db import migrations, models

logger = logging.getLogger(__name__)


def _copy_picture(image, field):
    if image is None:
        return
    try:
        with image.file.open("rb") as source:
            data = source.read()
    except (OSError, ValueError) as error:
        logger.warning("Certificate picture %s cannot be copied: %s", image.file.name, error)
        return
    extension = os.path.splitext(image.file.name)[1].lower() or ".png"
    name = hashlib.sha256(data).hexdigest() + extension
    field.save(name, ContentFile(data), save=False)


def owners_and_snapshots(apps, schema_editor):
    Organization = apps.get_model("members", "Organization")
    CertificateTemplate = apps.get_model("certificates", "CertificateTemplate")
    TemplateSnapshot = apps.get_model("certificates", "TemplateSnapshot")
    Certificate = apps.get_model("certificates", "Certificate")
    db = schema_editor.connection.alias

    city = Organization.objects.using(db).filter(depth=1).order_by("path").first()
    if city is not None:
        CertificateTemplate.objects.using(db).filter(owner_organization=None).update(
            owner_organization=city
        )
    used = Certificate.objects.using(db).values_list("template_id", flat=True).distinct()
    templates = CertificateTemplate.objects.using(db).filter(pk__in=used)
    for template in templates.select_related("seal", "signature"):
        snapshot = TemplateSnapshot(
            template=template,
            fingerprint=f"backfill:{template.pk}",
            kind=template.kind,
            title=template.title,
            body=template.body,
            issuer_lines=template.issuer_lines,
            border=template.border,
            seal_image=template.seal,
            signature_image=template.signature,
        )
        _copy_picture(template.seal, snapshot.seal)
        _copy_picture(template.signature, snapshot.signature)
        snapshot.save(using=db)
        Certificate.objects.using(db).filter(template=template, snapshot=None).update(
            snapshot=snapshot
        )
    if schema_editor.connection.vendor == "postgresql":
        # Check the deferred foreign keys now: the column is altered below, in this transaction.
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


class Migration(migrations.Migration):

    dependencies = [
        ('certificates', '0001_initial'),
        ('members', '0002_audit_immutable'),
        ('rounds', '0001_initial'),
        ('wagtailimages', '0027_image_description'),
    ]

    operations = [
        migrations.AddField(
            model_name='certificatetemplate',
            name='owner_organization',
            field=models.ForeignKey(blank=True, help_text='Its trainers (and those above) may change it; the levels below use it as it is.', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='members.organization', verbose_name='owned by'),
        ),
        migrations.AlterField(
            model_name='certificatetemplate',
            name='is_default',
            field=models.BooleanField(default=False, help_text='Used when a round names none. Only a template of the whole city can be it.', verbose_name='default for its kind'),
        ),
        migrations.CreateModel(
            name='RoundTemplate',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('round', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='certificate_template', to='rounds.round')),
                ('template', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='round_choices', to='certificates.certificatetemplate')),
            ],
            options={
                'verbose_name': 'certificate template of a round',
                'verbose_name_plural': 'certificate templates of rounds',
            },
        ),
        migrations.CreateModel(
            name='TemplateSnapshot',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('fingerprint', models.CharField(max_length=80, unique=True)),
                ('kind', models.CharField(choices=[('completion', 'Completion certificate (结业证书)'), ('hours', 'Study-hours statement (学时证明)')], max_length=20)),
                ('title', models.CharField(max_length=50, verbose_name='title')),
                ('body', models.TextField(verbose_name='text')),
                ('issuer_lines', models.TextField(verbose_name='issuing organisation')),
                ('border', models.CharField(choices=[('classic', 'Classic: double red border with corner ornaments'), ('simple', 'Simple: one thin border'), ('none', 'No border')], max_length=20)),
                ('seal', models.FileField(blank=True, upload_to='certificates/pictures/')),
                ('signature', models.FileField(blank=True, upload_to='certificates/pictures/')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('seal_image', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='wagtailimages.image')),
                ('signature_image', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='wagtailimages.image')),
                ('template', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='snapshots', to='certificates.certificatetemplate')),
            ],
            options={
                'verbose_name': 'certificate template as issued',
                'verbose_name_plural': 'certificate templates as issued',
            },
        ),
        migrations.AddField(
            model_name='certificate',
            name='snapshot',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='certificates', to='certificates.templatesnapshot', verbose_name='template as issued'),
        ),
        migrations.RunPython(owners_and_snapshots, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='certificate',
            name='snapshot',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='certificates', to='certificates.templatesnapshot', verbose_name='template as issued'),
        ),
    ]
