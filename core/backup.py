"""Backup and restore of a whole instance: the database and the media of both storages, in one tar.

The archive holds ``manifest.json`` (what was backed up, with row counts and checksums),
``database/db.sqlite3`` (a copy made with SQLite's online backup API) or ``database/db.dump``
(``pg_dump --format=custom``), and every file of ``storages["default"]`` under
``media/default/`` and of ``storages["video"]`` under ``media/video/``. Media are read and
written through the Storage API, so the same commands serve local files and S3.

A restore writes only into an empty database: it never merges into or overwrites existing
data. Everything that can be checked is checked before anything is written.
"""

import hashlib
import io
import json
import os
import posixpath
import re
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from glob import glob
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, storages
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django.db.utils import load_backend
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

FORMAT = "lunxun-backup"
VERSION = 1
MANIFEST = "manifest.json"
MEDIA_ALIASES = ("default", "video")
VENDORS = {"sqlite": "database/db.sqlite3", "postgresql": "database/db.dump"}
CHUNK = 1024 * 1024


class BackupError(Exception):
    """A backup or restore was refused or failed; the message tells the operator why."""


@dataclass
class BackupResult:
    path: Path
    vendor: str
    counts: dict
    media_files: int
    media_bytes: int


@dataclass
class RestoreResult:
    vendor: str
    created_at: str
    counts: dict
    media_files: int
    media_bytes: int
    unapplied: list = field(default_factory=list)
    warnings: list = field(default_factory=list)


def key_models():
    """The models whose row counts the manifest records and a restore checks: those the
    settings name (``LUNXUN_BACKUP_COUNTED_MODELS``, app labels, so that core names no domain
    app), and the user model."""
    labels = (*settings.LUNXUN_BACKUP_COUNTED_MODELS, settings.AUTH_USER_MODEL)
    return [apps.get_model(label) for label in labels]


# --- Backup ---------------------------------------------------------------------------------


def backup_create(*, output) -> BackupResult:
    """Write a backup archive to ``output`` (a file name, or a directory to put a time-stamped
    file in). The file is written under a temporary name and renamed when complete, readable
    by its owner only: it holds personal data."""
    target = _output_path(Path(output))
    vendor = connection.vendor
    if vendor not in VENDORS:
        raise BackupError(
            _("Backups support SQLite and PostgreSQL; this instance uses %(vendor)s.")
            % {"vendor": vendor}
        )
    partial = target.with_name(target.name + ".part")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.chmod(partial, 0o600)
    try:
        with (
            os.fdopen(descriptor, "wb") as handle,
            tarfile.open(fileobj=handle, mode="w", format=tarfile.PAX_FORMAT) as tar,
            tempfile.TemporaryDirectory(dir=target.parent, prefix=".lunxun-backup-") as scratch,
        ):
            created_at = timezone.now()
            database = _database_dump(Path(scratch))
            migrations, counts = database.pop("migrations"), database.pop("counts")
            with open(database.pop("path"), "rb") as dump:
                size = os.fstat(dump.fileno()).st_size
                digest = _add_stream(tar, VENDORS[vendor], dump, size)
            database.update(vendor=vendor, file=VENDORS[vendor], size=size, sha256=digest)
            media = _media_backup(tar)
            manifest = {
                "format": FORMAT,
                "version": VERSION,
                "created_at": created_at.isoformat(),
                "database": database,
                "migrations": migrations,
                "counts": counts,
                "media": media,
            }
            data = json.dumps(manifest, ensure_ascii=False, indent=1).encode()
            _add_stream(tar, MANIFEST, io.BytesIO(data), len(data))
        partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    files = [f for entry in media.values() for f in entry["files"]]
    return BackupResult(
        path=target,
        vendor=vendor,
        counts=manifest["counts"],
        media_files=len(files),
        media_bytes=sum(f["size"] for f in files),
    )


def _output_path(output: Path) -> Path:
    if output.is_dir():
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
        output = output / f"lunxun-backup-{stamp}.tar"
    if output.exists():
        raise BackupError(
            _("%(path)s already exists; a backup never overwrites a file.") % {"path": output}
        )
    if not output.parent.is_dir():
        raise BackupError(_("No such directory: %(path)s") % {"path": output.parent})
    return output


def _database_dump(scratch: Path) -> dict:
    """A consistent copy of the database in ``scratch``, with the row counts and migrations
    read from that same copy (not from the live database, which may have moved on)."""
    if connection.vendor == "sqlite":
        return _sqlite_dump(scratch)
    return _postgresql_dump(scratch)


def _sqlite_dump(scratch: Path) -> dict:
    if connection.is_in_memory_db():
        raise BackupError(_("An in-memory SQLite database cannot be backed up."))
    source_path = Path(connection.settings_dict["NAME"])
    if not source_path.is_file():
        raise BackupError(_("No such database file: %(path)s") % {"path": source_path})
    path = scratch / "db.sqlite3"
    # The online backup API copies a consistent snapshot while the application keeps running;
    # in WAL mode it reads committed pages from the log too. A fresh connection, so a caller's
    # open transaction on Django's connection neither blocks nor leaks into the copy.
    timeout = (connection.settings_dict.get("OPTIONS") or {}).get("timeout", 20)
    source = sqlite3.connect(source_path, timeout=timeout)
    copy = sqlite3.connect(path)
    try:
        source.backup(copy)
        # One self-contained file: no -wal beside it in the archive.
        copy.execute("PRAGMA journal_mode=DELETE")
        cursor = copy.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        facts = _facts(copy.cursor(), {name for (name,) in cursor.fetchall()})
    finally:
        copy.close()
        source.close()
    return {"path": path, **facts}


def _postgresql_dump(scratch: Path) -> dict:
    settings_dict = connection.settings_dict
    connection.ensure_connection()
    server_major = connection.pg_version // 10000
    binary, tool_major = _pg_tool("pg_dump", server_major)
    path = scratch / "db.dump"
    # A connection of our own holds a repeatable-read snapshot that pg_dump shares, so the
    # counts and migrations below describe exactly what the dump contains.
    wrapper = load_backend(settings_dict["ENGINE"]).DatabaseWrapper(dict(settings_dict), "backup")
    try:
        with wrapper.cursor() as cursor:
            cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot = cursor.fetchone()[0]
            facts = _facts(cursor, set(wrapper.introspection.table_names(cursor)))
            _run_pg(
                [
                    binary,
                    "--format=custom",
                    "--no-owner",
                    "--no-privileges",
                    f"--snapshot={snapshot}",
                    f"--file={path}",
                ],
                settings_dict,
            )
            cursor.execute("COMMIT")
    finally:
        wrapper.close()
    return {
        "path": path,
        "server_version": server_major,
        "pg_dump_version": tool_major,
        **facts,
    }


def _facts(cursor, tables) -> dict:
    """Applied migrations and key row counts, through a plain DB-API cursor on a database
    holding ``tables``."""
    recorder_table = MigrationRecorder.Migration._meta.db_table
    if recorder_table not in tables:
        raise BackupError(_("The database has not been set up (no migrations applied)."))
    cursor.execute(f'SELECT app, name FROM "{recorder_table}" ORDER BY app, name')
    migrations = {}
    for app, name in cursor.fetchall():
        migrations.setdefault(app, []).append(name)
    counts = {}
    for model in key_models():
        cursor.execute(f'SELECT COUNT(*) FROM "{model._meta.db_table}"')
        counts[model._meta.label_lower] = cursor.fetchone()[0]
    return {"migrations": migrations, "counts": counts}


def _media_backup(tar) -> dict:
    """Stream every file of each media storage into ``tar``; returns the manifest's media part."""
    media = {}
    for alias, (storage, shared_with, skip) in _media_layout().items():
        if shared_with:
            # Both aliases are one place: archive its files once, under the first alias.
            media[alias] = {"shared_with": shared_with, "files": []}
            continue
        files = []
        for name in _walk(storage, skip=skip):
            try:
                size = storage.size(name)
                handle = _open_stream(storage, name)
            except FileNotFoundError:
                continue  # deleted since it was listed
            with handle:
                digest = _add_stream(tar, f"media/{alias}/{name}", handle, size)
            files.append({"name": name, "size": size, "sha256": digest})
        media[alias] = {"files": files}
    return media


def _add_stream(tar, arcname, handle, size) -> str:
    """Copy ``size`` bytes of ``handle`` into ``tar`` a chunk at a time; returns their sha256."""
    info = tarfile.TarInfo(arcname)
    info.size = size
    info.mtime = int(timezone.now().timestamp())
    info.mode = 0o600
    reader = _HashingReader(handle)
    tar.addfile(info, reader)
    return reader.hash.hexdigest()


class _HashingReader:
    def __init__(self, handle):
        self.handle = handle
        self.hash = hashlib.sha256()

    def read(self, size=-1):
        data = self.handle.read(size)
        self.hash.update(data)
        return data


# --- Media storages ---------------------------------------------------------------------------


def _storage_root(storage, alias):
    """Where a storage keeps its files, so two aliases on one place are walked once."""
    if isinstance(storage, FileSystemStorage):
        return ("file", "", os.path.realpath(storage.location))
    bucket = getattr(storage, "bucket_name", None)
    if bucket:
        endpoint = getattr(storage, "endpoint_url", None) or ""
        return ("s3", f"{endpoint}/{bucket}", (getattr(storage, "location", "") or "").strip("/"))
    return ("other", alias, "")


def _inside(path, parent):
    return path != parent and (parent == "" or path.startswith(parent.rstrip("/") + "/"))


def _media_layout() -> dict:
    """For each configured media alias: (storage, alias it shares one place with, or None,
    sub-folders to skip because another alias's storage lives there)."""
    aliases = [alias for alias in MEDIA_ALIASES if alias in storages.backends]
    roots = {alias: _storage_root(storages[alias], alias) for alias in aliases}
    layout = {}
    for alias in aliases:
        kind, place, path = roots[alias]
        shared_with = next((a for a in layout if roots[a] == roots[alias]), None)
        skip = {
            other_path[len(path) :].strip("/").replace(os.sep, "/")
            for other, (other_kind, other_place, other_path) in roots.items()
            if other != alias and (other_kind, other_place) == (kind, place)
            if _inside(other_path, path)
        }
        layout[alias] = (storages[alias], shared_with, skip)
    return layout


def _walk(storage, path="", skip=()):
    """Every file name in ``storage`` below ``path``, through the Storage API."""
    try:
        directories, files = storage.listdir(path)
    except FileNotFoundError:
        return
    for name in sorted(files):
        yield posixpath.join(path, name) if path else name
    for directory in sorted(directories):
        sub = posixpath.join(path, directory) if path else directory
        if sub not in skip:
            yield from _walk(storage, sub, skip)


def _open_stream(storage, name):
    """``name`` opened for reading in chunks. django-storages' S3File copies the whole object
    into a spooled temporary file first (in memory unless AWS_S3_MAX_MEMORY_SIZE is set), so
    an S3 object's body is read as a stream instead."""
    try:
        from storages.backends.s3 import S3Storage
        from storages.utils import clean_name
    except ImportError:  # pragma: no cover - django-storages is a dependency
        S3Storage = None
    if S3Storage is not None and isinstance(storage, S3Storage):
        key = storage._normalize_name(clean_name(name))
        return storage.bucket.Object(key).get()["Body"]
    return storage.open(name, "rb")


def _sha256(handle) -> str:
    digest = hashlib.sha256()
    while chunk := handle.read(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


# --- PostgreSQL tools -------------------------------------------------------------------------


def _pg_tool(name, minimum_major):
    """``name`` (pg_dump or pg_restore) of at least ``minimum_major``: the one on PATH if it is
    new enough, else the closest of Debian's /usr/lib/postgresql/*/bin."""
    debian = sorted(
        glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(re.search(r"/(\d+)/bin/", p).group(1)),
    )
    candidates = [shutil.which(name), *debian]
    found = []
    for path in filter(None, candidates):
        major = _tool_major(path)
        if major is not None:
            found.append((path, major))
            if major >= minimum_major:
                return path, major
    versions = ", ".join(f"{path} ({major})" for path, major in found) or "-"
    raise BackupError(
        _("No %(tool)s of version %(version)s or newer was found (found: %(found)s).")
        % {"tool": name, "version": minimum_major, "found": versions}
    )


def _tool_major(path):
    try:
        result = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=30, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"\)\s+(\d+)", result.stdout)
    return int(match.group(1)) if match else None


_LIBPQ_OPTIONS = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "passfile": "PGPASSFILE",
    "service": "PGSERVICE",
    "connect_timeout": "PGCONNECT_TIMEOUT",
}


def _run_pg(command, settings_dict):
    """Run a PostgreSQL client tool on the configured database. Connection parameters go in
    the environment, the password included: never on a command line others can read."""
    env = os.environ.copy()
    for key, variable in (
        ("HOST", "PGHOST"),
        ("PORT", "PGPORT"),
        ("USER", "PGUSER"),
        ("PASSWORD", "PGPASSWORD"),
        ("NAME", "PGDATABASE"),
    ):
        if settings_dict.get(key):
            env[variable] = str(settings_dict[key])
    for option, variable in _LIBPQ_OPTIONS.items():
        value = (settings_dict.get("OPTIONS") or {}).get(option)
        if value:
            env[variable] = str(value)
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tool = Path(command[0]).name
        raise BackupError(
            _("%(tool)s failed: %(error)s")
            % {"tool": tool, "error": result.stderr.strip()[-2000:] or result.returncode}
        )


# --- Restore --------------------------------------------------------------------------------


def backup_restore(*, archive, force=False, log=None) -> RestoreResult:
    """Restore ``archive`` into this instance, whose database must be empty.

    Before anything is written: the manifest is read, the database engine compared, the
    target database checked to be empty, the media storages checked for files of the same
    names (refused unless ``force``, which replaces them; ``force`` never touches a database
    that is not empty), and every file's size and sha256 checked. Then the database is
    restored, every media file is written through the Storage API and read back to check its
    name and checksum, and the row counts and migrations are compared with the manifest.
    """
    log = log or (lambda message: None)
    path = Path(archive)
    if not path.is_file():
        raise BackupError(_("No such file: %(path)s") % {"path": path})
    try:
        tar = tarfile.open(path, "r:")
    except (tarfile.TarError, OSError):
        raise BackupError(
            _("%(path)s is not a backup archive (it is not a tar file).") % {"path": path}
        ) from None
    with tar:
        try:
            members = {member.name: member for member in tar.getmembers()}
        except tarfile.TarError as error:
            raise _damaged(error) from None
        manifest = _read_manifest(tar, members)
        warnings = _check_target(manifest, force=force)
        log(_("Checking the archive…"))
        _check_archive(tar, members, manifest)
        log(_("Restoring the database…"))
        _restore_database(tar, members[manifest["database"]["file"]], manifest)
        log(_("Restoring the media files…"))
        files, size = _restore_media(tar, members, manifest, force=force)
    log(_("Checking the restored data…"))
    _check_restored(manifest)
    return RestoreResult(
        vendor=manifest["database"]["vendor"],
        created_at=manifest["created_at"],
        counts=manifest["counts"],
        media_files=files,
        media_bytes=size,
        unapplied=_unapplied_migrations(),
        warnings=warnings,
    )


def _damaged(reason):
    return BackupError(_("The archive is damaged: %(error)s") % {"error": reason})


def _safe_name(name):
    """A relative storage name with no way out of its storage."""
    return (
        isinstance(name, str)
        and "\\" not in name
        and "\x00" not in name
        and all(part not in ("", ".", "..") for part in name.split("/"))
    )


def _read_manifest(tar, members) -> dict:
    member = members.get(MANIFEST)
    if member is None or not member.isfile():
        raise BackupError(_("The archive has no manifest.json: it is not a Lunxun backup."))
    try:
        manifest = json.load(tar.extractfile(member))
    except ValueError:
        raise _damaged(_("manifest.json is not valid JSON.")) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(_("The archive's manifest.json is not that of a Lunxun backup."))
    if manifest.get("version") != VERSION:
        raise BackupError(
            _("This backup has format version %(found)s; this code reads version %(expected)s.")
            % {"found": manifest.get("version"), "expected": VERSION}
        )
    try:
        database = manifest["database"]
        expected = [(database["file"], database["size"], database["sha256"])]
        if VENDORS.get(database["vendor"]) != database["file"]:
            raise _damaged(_("the database entry does not match its engine."))
        for alias, entry in manifest["media"].items():
            if alias not in MEDIA_ALIASES:
                raise _damaged(_("unknown storage “%(name)s”.") % {"name": alias})
            for item in entry["files"]:
                if not _safe_name(item["name"]):
                    raise _damaged(_("unsafe file name “%(name)s”.") % {"name": item["name"]})
                expected.append((f"media/{alias}/{item['name']}", item["size"], item["sha256"]))
        manifest["counts"].items()
        manifest["migrations"].items()
        manifest["created_at"]
    except (KeyError, TypeError, AttributeError):
        raise _damaged(_("manifest.json lacks required entries.")) from None
    for name, size, digest in expected:
        member = members.get(name)
        if member is None or not member.isfile():
            raise _damaged(_("%(name)s is missing.") % {"name": name})
        if member.size != size:
            raise _damaged(
                _("%(name)s has %(found)d bytes; the manifest says %(expected)d.")
                % {"name": name, "found": member.size, "expected": size}
            )
        if not (isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest)):
            raise _damaged(_("%(name)s has no checksum in the manifest.") % {"name": name})
    return manifest


def _check_target(manifest, *, force) -> list:
    """Refuse what cannot be restored here, before anything is written; returns warnings."""
    vendor = manifest["database"]["vendor"]
    if vendor != connection.vendor:
        raise BackupError(
            _(
                "This backup is of a %(archive)s database and this instance uses %(target)s. "
                "Restoring across database engines is not supported: the dump is in the "
                "engine's own format (an SQLite database file or a pg_dump archive), which "
                "the other engine cannot read. Restore into an instance with the same engine."
            )
            % {"archive": vendor, "target": connection.vendor}
        )
    # Migrations of installed apps this code does not have (nor replaces by a squashed one)
    # mean the backup comes from a newer version, whose schema this code may misread.
    disk = MigrationLoader(None, ignore_no_migrations=True).disk_migrations
    known = set(disk) | {key for migration in disk.values() for key in migration.replaces}
    installed = {config.label for config in apps.get_app_configs()}
    unknown = sorted(
        f"{app}.{name}"
        for app, names in manifest["migrations"].items()
        if app in installed
        for name in names
        if (app, name) not in known
    )
    if unknown:
        raise BackupError(
            _(
                "This backup was made by a newer version of Lunxun: this code does not have "
                "the migrations %(names)s. Restore it with the version that made it."
            )
            % {"names": ", ".join(unknown[:5])}
        )
    if connection.vendor == "sqlite":
        if connection.is_in_memory_db():
            raise BackupError(_("An in-memory SQLite database cannot be restored into."))
        folder = Path(connection.settings_dict["NAME"]).parent
        if not folder.is_dir():
            raise BackupError(_("No such directory: %(path)s") % {"path": folder})
    tables = connection.introspection.table_names(include_views=True)
    if tables:
        raise BackupError(
            _(
                "The target database is not empty (%(count)d tables, such as %(names)s). "
                "A restore only writes into an empty database, never over existing data, "
                "and --force does not change that: create a new, empty database (a new file "
                "in SQLITE_PATH, or a new PostgreSQL database in DATABASE_URL) and restore "
                "into it."
            )
            % {"count": len(tables), "names": ", ".join(tables[:3])}
        )
    layout = _media_layout()
    warnings = []
    for alias, entry in manifest["media"].items():
        shared_with = entry.get("shared_with")
        if shared_with:
            if alias in layout and layout[alias][1] != shared_with:
                warnings.append(
                    _(
                        "In the backup, the %(alias)s storage and the %(other)s storage were "
                        "one place; their files were restored to the %(other)s storage only."
                    )
                    % {"alias": alias, "other": shared_with}
                )
            continue
        if not entry["files"]:
            continue
        if alias not in layout:
            raise BackupError(
                _(
                    "The backup holds files of the %(alias)s storage, which this instance "
                    "does not configure (STORAGES)."
                )
                % {"alias": alias}
            )
        existing = set(_walk(layout[alias][0]))
        clashes = sorted(existing.intersection(item["name"] for item in entry["files"]))
        if clashes and not force:
            raise BackupError(
                ngettext(
                    "The %(alias)s storage already holds %(count)d file the backup would "
                    "write (%(names)s). Restore into empty storage, or give --force to "
                    "replace those files.",
                    "The %(alias)s storage already holds %(count)d files the backup would "
                    "write (%(names)s). Restore into empty storage, or give --force to "
                    "replace those files.",
                    len(clashes),
                )
                % {"alias": alias, "count": len(clashes), "names": ", ".join(clashes[:3])}
            )
    return warnings


def _check_archive(tar, members, manifest):
    """Every file's checksum, read from the archive before anything is written."""
    database = manifest["database"]
    expected = [(database["file"], database["sha256"])] + [
        (f"media/{alias}/{item['name']}", item["sha256"])
        for alias, entry in manifest["media"].items()
        for item in entry["files"]
    ]
    for name, digest in expected:
        if _sha256(tar.extractfile(members[name])) != digest:
            raise _damaged(
                _("the checksum of %(name)s does not match the manifest; nothing was restored.")
                % {"name": name}
            )


def _extract(tar, member, path: Path):
    with tar.extractfile(member) as source, open(path, "wb") as target:
        shutil.copyfileobj(source, target, CHUNK)


def _restore_database(tar, member, manifest):
    settings_dict = connection.settings_dict
    if connection.vendor == "sqlite":
        target = Path(settings_dict["NAME"])
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".lunxun-restore-") as scratch:
            copy_path = Path(scratch) / "db.sqlite3"
            _extract(tar, member, copy_path)
            # Django's connection must not hold the file open (or a cached schema) across the
            # copy; it reconnects, and re-runs its PRAGMAs, on next use.
            connection.close()
            source = sqlite3.connect(copy_path)
            destination = sqlite3.connect(target, timeout=30)
            try:
                # The backup API refuses a WAL destination whose page size differs.
                destination.execute("PRAGMA journal_mode=DELETE")
                source.backup(destination)
                destination.execute("PRAGMA journal_mode=WAL")
            finally:
                destination.close()
                source.close()
            connection.close()
        return
    connection.ensure_connection()
    minimum = max(connection.pg_version // 10000, manifest["database"].get("pg_dump_version", 0))
    binary, _major = _pg_tool("pg_restore", minimum)
    with tempfile.TemporaryDirectory(prefix="lunxun-restore-") as scratch:
        dump_path = Path(scratch) / "db.dump"
        _extract(tar, member, dump_path)
        connection.close()
        # One transaction: a failure leaves the database as empty as it was.
        _run_pg(
            [
                binary,
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--single-transaction",
                f"--dbname={settings_dict['NAME']}",
                str(dump_path),
            ],
            settings_dict,
        )


def _restore_media(tar, members, manifest, *, force):
    files = size = 0
    for alias, entry in manifest["media"].items():
        if not entry["files"]:
            continue
        storage = storages[alias]
        for item in entry["files"]:
            name = item["name"]
            if force and storage.exists(name):
                storage.delete(name)
            with tar.extractfile(members[f"media/{alias}/{name}"]) as source:
                content = File(source, name=posixpath.basename(name))
                content.size = item["size"]
                saved = storage.save(name, content)
            if saved != name:
                raise BackupError(
                    _(
                        "The %(alias)s storage stored %(name)s as %(saved)s. The database is "
                        "restored; media files are not complete."
                    )
                    % {"alias": alias, "name": name, "saved": saved}
                )
            with _open_stream(storage, saved) as stored:
                if _sha256(stored) != item["sha256"]:
                    raise BackupError(
                        _(
                            "%(name)s in the %(alias)s storage does not read back as it was "
                            "written. The database is restored; media files are not complete."
                        )
                        % {"alias": alias, "name": name}
                    )
            files += 1
            size += item["size"]
    return files, size


def _check_restored(manifest):
    with connection.cursor() as cursor:
        facts = _facts(cursor, set(connection.introspection.table_names(cursor)))
    for label, expected in manifest["counts"].items():
        found = facts["counts"].get(label)
        if found != expected:
            raise BackupError(
                _("After the restore %(table)s has %(found)s rows; the backup had %(expected)s.")
                % {"table": label, "found": found, "expected": expected}
            )
    if facts["migrations"] != manifest["migrations"]:
        raise BackupError(_("After the restore the applied migrations differ from the backup's."))


def _unapplied_migrations():
    """Migrations this code has that the restored database has not applied."""
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _backwards in plan]
