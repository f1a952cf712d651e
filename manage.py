#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    # Production unless told otherwise: a server where nobody set DJANGO_SETTINGS_MODULE must
    # never run with DEBUG on. `make demo` and scripts/run-demo.sh ask for development.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
