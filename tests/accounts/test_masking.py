"""R4: ID numbers and names shown masked."""

import pytest
from django.template import Context, Template

from accounts.masking import mask_id_number, mask_name


def test_r4_id_number_keeps_first_three_and_last_four():
    assert mask_id_number("11010519491231002X") == "110***********002X"


@pytest.mark.parametrize(
    ("name", "masked"),
    [("张伟", "张*"), ("张小明", "张*"), ("欧阳娜娜", "欧阳*"), ("司马光", "司马*"), ("王", "王"), ("", "")],
)
def test_r4_name_keeps_the_family_name(name, masked):
    assert mask_name(name) == masked


def test_r4_template_filters_mask():
    rendered = Template("{% load portal_format %}{{ id|mask_id }} {{ name|mask_name }}").render(
        Context({"id": "32050519800315111X", "name": "欧阳修"})
    )
    assert rendered == "320***********111X 欧阳*"
