"""Run the live-lecture streaming server (nginx with the RTMP module) in the foreground.

    manage.py live_server            render LUNXUN_LIVE_ROOT/nginx.conf, start nginx, wait
    manage.py live_server --check    only say whether it can run here, and why not

``make demo`` runs it beside the site (scripts/run-demo.sh); see docs/live.md.
"""

import signal

from django.core.management.base import BaseCommand, CommandError

from courses import live


class Command(BaseCommand):
    help = "Run the live-lecture streaming server (nginx RTMP module) in the foreground."

    def add_arguments(self, parser):
        parser.add_argument(
            "--check", action="store_true", help="Only say whether it can run here."
        )

    def handle(self, *args, check=False, **options):
        config = live.LiveConfig.from_settings()
        why = live.why_not_available(config)
        if why:
            raise CommandError(f"The live-lecture server cannot start: {why}.")
        server = live.LiveServer(config)
        if check:
            try:
                server.check()
            except RuntimeError as error:
                raise CommandError(str(error)) from None
            self.stdout.write("The live-lecture server can run here.")
            return
        try:
            server.start()
        except RuntimeError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"Live lectures: push RTMP to {live.settings.LUNXUN_LIVE_RTMP_URL} "
            f"(HLS on http://127.0.0.1:{config.http_port}/live/, files in {config.root})"
        )

        def stop(signum, frame):
            server.request_stop()  # nginx finishes; wait() below then returns

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        server.wait()
