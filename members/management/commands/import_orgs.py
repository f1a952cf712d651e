from members import importing

from ._import import ImportCommand


class Command(ImportCommand):
    help = "Import organisations (.xlsx or .csv), parents before children. Exit 1 on any error."
    check_import = staticmethod(importing.orgs_check)
    apply_import = staticmethod(importing.orgs_apply)
