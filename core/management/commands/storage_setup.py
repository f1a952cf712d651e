"""Prepare the object-storage bucket of the scale profile (run once per deployment; repeatable).

The bucket holds both stores (config/settings/base.py): ``private/`` (video sources, certificate
PDFs, images; read only through views that check who asks, or short-lived signed URLs) and
``public/`` (the HLS ladder, MP4 fallback and posters that players fetch directly). This
command creates the bucket if it is missing, lets the site's pages read it cross-origin (hls.js
fetches playlists and segments with XHR) and makes exactly the public store readable by anyone.
"""

import json
from urllib.parse import urlsplit

from botocore.exceptions import ClientError
from django.conf import settings
from django.core.files.storage import storages
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _


def site_origin(url: str) -> str:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        raise CommandError(_("LUNXUN_SITE_URL is not an absolute URL: %(url)s") % {"url": url})
    return f"{parts.scheme}://{parts.netloc}"


def cors_rules(origins) -> dict:
    return {
        "CORSRules": [
            {
                "AllowedOrigins": sorted(set(origins)),
                "AllowedMethods": ["GET", "HEAD"],
                "AllowedHeaders": ["Range"],
                "ExposeHeaders": ["Content-Length", "Content-Range"],
                "MaxAgeSeconds": 3600,
            }
        ]
    }


def public_read_policy(bucket: str, prefix: str) -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PublicVideoStore",
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:GetObject"],
                "Resource": [f"arn:aws:s3:::{bucket}/{prefix}/*"],
            }
        ],
    }


class Command(BaseCommand):
    help = (
        "Create the LUNXUN_S3_BUCKET bucket if it is missing, allow GET/HEAD from the site's "
        "origin (CORS) and make only the public video store readable by anyone."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--origin",
            action="append",
            default=[],
            help="another origin allowed to read the bucket (default: LUNXUN_SITE_URL's only)",
        )

    def handle(self, *args, origin, **options):
        if not settings.LUNXUN_S3_BUCKET:
            raise CommandError(_("LUNXUN_S3_BUCKET is not set: there is no bucket to prepare."))
        video = storages["video"]
        private = storages["default"]
        bucket = settings.LUNXUN_S3_BUCKET
        prefix = (video.location or "").strip("/")
        if not prefix or prefix == (getattr(private, "location", "") or "").strip("/"):
            raise CommandError(
                _("The public video store needs its own prefix in the bucket; it has none.")
            )
        client = video.connection.meta.client
        origins = [site_origin(settings.LUNXUN_SITE_URL), *map(site_origin, origin)]
        try:
            try:
                client.head_bucket(Bucket=bucket)
                created = False
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
                    raise
                region = video.region_name
                extra = {}
                if region and region != "us-east-1":
                    extra["CreateBucketConfiguration"] = {"LocationConstraint": region}
                client.create_bucket(Bucket=bucket, **extra)
                created = True
            client.put_bucket_cors(Bucket=bucket, CORSConfiguration=cors_rules(origins))
            client.put_bucket_policy(
                Bucket=bucket, Policy=json.dumps(public_read_policy(bucket, prefix))
            )
        except ClientError as error:
            raise CommandError(
                _("The object store refused: %(error)s") % {"error": error}
            ) from None
        message = _("Bucket %(bucket)s created.") if created else _("Bucket %(bucket)s exists.")
        self.stdout.write(message % {"bucket": bucket})
        self.stdout.write(
            _("Readable by anyone: %(prefix)s/ only. Cross-origin reads allowed from: %(origins)s.")
            % {"prefix": prefix, "origins": ", ".join(sorted(set(origins)))}
        )
