"""C2: ``python manage.py load_policy FILE.json`` loads regions and policy versions."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from family.policy_file import PolicyFileError, policy_document_decode
from family.services import PolicyLoadResult, policy_load
from family.tasks import bindings_reevaluate_pending


class Command(BaseCommand):
    help = "C2: load pooling regions and policy versions from a JSON policy file (all or nothing)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path, help="the policy file (UTF-8 JSON, a BOM is accepted)")

    def handle(self, *args, file: Path, **options) -> None:
        try:
            raw = file.read_bytes()
        except OSError as error:
            raise CommandError(
                _("%(file)s: cannot be read: %(reason)s") % {"file": file, "reason": error.strerror}
            ) from error
        try:
            result = policy_load(document=policy_document_decode(raw))
        except PolicyFileError as error:
            # One problem a line, each naming its entry and field; nothing was written.
            for problem in error.problems:
                self.stderr.write(f"{file}: {problem}")
            raise CommandError(
                _("%(file)s was not loaded: %(count)d problem(s); nothing was changed.")
                % {"file": file, "count": len(error.problems)},
                returncode=1,
            ) from error
        if result.policies_replaced:
            # R17: applications still pending in the changed regions are checked again under the new versions.
            bindings_reevaluate_pending.delay(list(result.policies_replaced))
        self.stdout.write(self.summary(file, result))

    @staticmethod
    def summary(file: Path, result: PolicyLoadResult) -> str:
        """The one line that says what the load did."""
        if not result.changed:
            return _(
                "%(file)s: no change (%(regions)d regions and the versions of %(policies)d regions "
                "already as in the file)"
            ) % {"file": file, "regions": result.regions_unchanged, "policies": len(result.policies_unchanged)}
        return _(
            "%(file)s: regions %(created)d created, %(updated)d updated, %(unchanged)d unchanged; "
            "policy versions replaced for %(replaced)s (%(deleted)d removed, %(added)d added), "
            "%(kept)d regions unchanged"
        ) % {
            "file": file,
            "created": len(result.regions_created),
            "updated": len(result.regions_updated),
            "unchanged": result.regions_unchanged,
            "replaced": ", ".join(result.policies_replaced) or "-",
            "deleted": result.versions_deleted,
            "added": result.versions_created,
            "kept": len(result.policies_unchanged),
        }
