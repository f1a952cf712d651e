# The import record also imports organisations: named for what it is. RenameModel keeps the
# table's rows (and renames the content type, so audit records of imports keep their object).

from django.conf import settings
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('members', '0003_activation_code_kind_organization_code_characters'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RenameModel(old_name='RosterImport', new_name='SpreadsheetImport'),
    ]
