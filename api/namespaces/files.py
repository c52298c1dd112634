"""File monitoring: watched paths with their status, the changes found (with config diffs), backups."""

from __future__ import annotations

from flask_restx import Namespace, Resource, abort
from sqlalchemy import select

from api.auth import require_role
from api.context import runtime
from api.query import paginate, paged_parser, row_id, timestamp
from monitor_app.files.views import BACKUP_STATES, CHANGE_TYPES, WATCH_STATUSES, backup_dict, change_dict, watch_dict
from monitor_app.store.models.files import FileBackup, FileChange, FileWatch

ns = Namespace("files", description="Watched paths, their changes and backups")

watch_args = paged_parser()
watch_args.add_argument("status", choices=WATCH_STATUSES, location="args")
watch_args.add_argument("asset_id", type=row_id, location="args")

change_args = paged_parser()
change_args.add_argument("watch_id", type=row_id, location="args")
change_args.add_argument("asset_id", type=row_id, location="args")
change_args.add_argument("type", choices=CHANGE_TYPES, location="args")
change_args.add_argument("since", type=timestamp, location="args")

backup_args = paged_parser()
backup_args.add_argument("watch_id", type=row_id, location="args")
backup_args.add_argument("state", choices=BACKUP_STATES, location="args")


@ns.route("/watches")
class FileWatchList(Resource):
    @ns.expect(watch_args)
    @require_role("viewer")
    def get(self):
        """Watched paths: where each comes from, its status (ok, unavailable, error), size and unreadable paths."""
        args = watch_args.parse_args()
        query = select(FileWatch)
        query = query.where(FileWatch.status == args.status) if args.status else query.where(FileWatch.status != "removed")
        if args.asset_id is not None:
            query = query.where(FileWatch.asset_id == args.asset_id)
        with runtime().store.session() as s:
            return paginate(s, query, FileWatch.id, args, watch_dict)


@ns.route("/watches/<int:watch_id>")
class FileWatchOne(Resource):
    @require_role("viewer")
    def get(self, watch_id: int):
        """One watched path."""
        with runtime().store.session() as s:
            watch = s.get(FileWatch, watch_id)
            if watch is None:
                abort(404, f"no watch {watch_id}")
            return watch_dict(watch)


@ns.route("/changes")
class FileChangeList(Resource):
    @ns.expect(change_args)
    @require_role("viewer")
    def get(self):
        """Changes, newest first, with the parsed diff of config files (secrets redacted)."""
        args = change_args.parse_args()
        query = select(FileChange)
        for column, value in ((FileChange.watch_id, args.watch_id), (FileChange.asset_id, args.asset_id),
                              (FileChange.type, args.type)):
            if value is not None:
                query = query.where(column == value)
        if args.since is not None:
            query = query.where(FileChange.observed_at >= args.since)
        with runtime().store.session() as s:
            return paginate(s, query, FileChange.id.desc(), args, change_dict)


@ns.route("/backups")
class FileBackupList(Resource):
    @ns.expect(backup_args)
    @require_role("viewer")
    def get(self):
        """Backups under backup watches: in progress, completed (with format check) or corrupt."""
        args = backup_args.parse_args()
        query = select(FileBackup)
        if args.watch_id is not None:
            query = query.where(FileBackup.watch_id == args.watch_id)
        if args.state:
            query = query.where(FileBackup.state == args.state)
        with runtime().store.session() as s:
            return paginate(s, query, FileBackup.id.desc(), args, backup_dict)
