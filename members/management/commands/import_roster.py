from members import services

from ._import import ImportCommand


class Command(ImportCommand):
    help = "Import a member roster (.xlsx or .csv): all rows or none. Exit 1 on any error."
    check_import = staticmethod(services.roster_check)
    apply_import = staticmethod(services.roster_apply)
