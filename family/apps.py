from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FamilyConfig(AppConfig):
    name = "family"
    verbose_name = _("Family sharing")

    def ready(self) -> None:
        from accounts.signals import persons_sharing_changed
        from family.tasks import bindings_end_for_owner

        def end_bindings_of_changed_owners(sender, person_ids: list[int], **kwargs) -> None:
            # R27: an owner suspended, moved or no longer in 职工医保 cannot share any more.
            bindings_end_for_owner.delay(list(person_ids))

        persons_sharing_changed.connect(end_bindings_of_changed_owners, weak=False, dispatch_uid="family_r27")
