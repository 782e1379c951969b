"""R24: the canned rejection reasons reviewers start with; editable in the admin afterwards."""

from django.db import migrations

REASONS = [
    (
        "户口本页面不清晰，请重新拍照上传（整页、对焦、光线充足）。",
        "The household register page is not readable; take a new photo (whole page, in focus, good light).",
    ),
    (
        "上传的户口本页面与申请人的姓名或身份证号码不一致。",
        "The household register page does not show the name or ID number in the application.",
    ),
    (
        "材料不能证明所填写的家庭关系，请上传能显示双方关系的户口本页面或结婚证。",
        "The documents do not show the relationship; upload register pages that show it, or the marriage certificate.",
    ),
    ("缺少家庭成员的户口本页面。", "The relative's household register page is missing."),
    ("个人承诺书签名与账户所有人姓名不一致。", "The commitment letter is not signed with the owner's name."),
]


def add_reasons(apps, schema_editor):
    ReviewReason = apps.get_model("family", "ReviewReason")
    if ReviewReason.objects.exists():
        return
    ReviewReason.objects.bulk_create(
        ReviewReason(text_zh=zh, text_en=en, position=index) for index, (zh, en) in enumerate(REASONS)
    )


class Migration(migrations.Migration):
    dependencies = [("family", "0005_review_workbench")]

    operations = [migrations.RunPython(add_reasons, migrations.RunPython.noop)]
