"""GB/T 2260 administrative division codes: the provinces and the plausibility of a code."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

__all__ = [
    "BEIJING",
    "TIANJIN",
    "HEBEI",
    "NATIONAL_DIVISION_CODE",
    "Province",
    "PROVINCES",
    "province_of",
    "region_name",
    "is_division_code",
]

BEIJING: Final = 110000
TIANJIN: Final = 120000
HEBEI: Final = 130000

# Entities registered by the national administration (e.g. central state-owned enterprises)
# carry 100000 in USCC characters 3-8; GB/T 2260 itself lists no such province.
NATIONAL_DIVISION_CODE: Final = 100000


@dataclass(frozen=True, slots=True)
class Province:
    """A provincial-level division of GB/T 2260: two-digit prefix, names, six-digit code."""

    prefix: int
    name_zh: str
    name_en: str

    @property
    def code(self) -> int:
        """The six-digit division code of the province itself, e.g. 110000."""
        return self.prefix * 10000


_PROVINCE_LIST: Final = (
    Province(11, "北京市", "Beijing"),
    Province(12, "天津市", "Tianjin"),
    Province(13, "河北省", "Hebei"),
    Province(14, "山西省", "Shanxi"),
    Province(15, "内蒙古自治区", "Inner Mongolia"),
    Province(21, "辽宁省", "Liaoning"),
    Province(22, "吉林省", "Jilin"),
    Province(23, "黑龙江省", "Heilongjiang"),
    Province(31, "上海市", "Shanghai"),
    Province(32, "江苏省", "Jiangsu"),
    Province(33, "浙江省", "Zhejiang"),
    Province(34, "安徽省", "Anhui"),
    Province(35, "福建省", "Fujian"),
    Province(36, "江西省", "Jiangxi"),
    Province(37, "山东省", "Shandong"),
    Province(41, "河南省", "Henan"),
    Province(42, "湖北省", "Hubei"),
    Province(43, "湖南省", "Hunan"),
    Province(44, "广东省", "Guangdong"),
    Province(45, "广西壮族自治区", "Guangxi"),
    Province(46, "海南省", "Hainan"),
    Province(50, "重庆市", "Chongqing"),
    Province(51, "四川省", "Sichuan"),
    Province(52, "贵州省", "Guizhou"),
    Province(53, "云南省", "Yunnan"),
    Province(54, "西藏自治区", "Xizang"),
    Province(61, "陕西省", "Shaanxi"),
    Province(62, "甘肃省", "Gansu"),
    Province(63, "青海省", "Qinghai"),
    Province(64, "宁夏回族自治区", "Ningxia"),
    Province(65, "新疆维吾尔自治区", "Xinjiang"),
    Province(71, "台湾省", "Taiwan"),
    Province(81, "香港特别行政区", "Hong Kong"),
    Province(82, "澳门特别行政区", "Macao"),
)

PROVINCES: Final = MappingProxyType({p.prefix: p for p in _PROVINCE_LIST})
"""Provincial-level divisions of GB/T 2260 by two-digit prefix (31 mainland + TW, HK, MO)."""


def province_of(code: int) -> Province | None:
    """Return the province a six-digit division code belongs to, or None if none does."""
    if type(code) is not int or not 100000 <= code <= 999999:
        return None
    return PROVINCES.get(code // 10000)


def is_division_code(code: int) -> bool:
    """Tell whether ``code`` is a plausible GB/T 2260 six-digit division code.

    Plausible means six digits whose first two are a known provincial prefix. The full
    county-level table changes every year, so it is deliberately not checked here.
    """
    return province_of(code) is not None


def region_name(code: int, *, lang: str = "zh") -> str:
    """Return the name of the province of ``code`` (``lang`` "zh" or "en").

    Raises KeyError when the code is not a plausible division code.
    """
    if lang not in ("zh", "en"):
        raise ValueError(f"lang must be 'zh' or 'en', not {lang!r}")
    province = province_of(code)
    if province is None:
        raise KeyError(code)
    return province.name_zh if lang == "zh" else province.name_en
