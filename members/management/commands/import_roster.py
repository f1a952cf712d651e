from members import importing

from ._import import ImportCommand


class Command(ImportCommand):
    help = "Import a member roster (.xlsx or .csv): all rows or none. Exit 1 on any error."
    check_import = staticmethod(importing.roster_check)
    apply_import = staticmethod(importing.roster_apply)
