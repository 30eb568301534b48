"""What a consumer sees of a mask, in words (English and Chinese), for the catalog document.

One sentence per kind, filled in with the mask's own parameters, so that a consumer
reading ``GET /v1/catalog`` knows what a masked column holds without reading SQL.
"""

from __future__ import annotations

from gateway.domain import MaskSpec
from gateway.query.rewrite.mask_params import (
    PRESETS,
    Partial,
    date_shift_params,
    email_params,
    partial_params,
    regex_params,
)

__all__ = ["describe_mask"]

_FIXED: dict[str, tuple[str, str]] = {
    "nullify": ("always null", "始终为空"),
    "year": ("the year only, as an integer", "仅保留年份（整数）"),
    "month": ("the first day of the month (a date)", "截断到月份（该月第一天）"),
    "city": (
        "the city of the district (null for a district the catalog does not list)",
        "所属城市（目录未列出的区为空）",
    ),
    "pseudonym": (
        "a pseudonym of 32 hex digits: equal values give equal pseudonyms within your "
        "department, other departments get different ones",
        "32位十六进制假名：本部门内相同的值得到相同的假名，其他部门的假名不同",
    ),
}


def describe_mask(spec: MaskSpec) -> dict[str, str]:
    """``{"en": ..., "zh": ...}`` describing what ``spec`` leaves of a value. ``spec`` must
    be valid (checked when the policy was loaded); NULL always stays NULL."""
    kind = spec.kind
    if kind in _FIXED:
        en, zh = _FIXED[kind]
        return {"en": en, "zh": zh}
    if kind in PRESETS:
        en, zh = _partial(partial_params(spec))
        return {"en": en, "zh": zh}
    if kind == "email":
        en, zh = _partial(email_params(spec))
        return {
            "en": f"the part before the first '@': {en}; the '@' and the domain kept",
            "zh": f"“@”之前的部分{zh}；“@”及域名保留",
        }
    if kind == "regex":
        params = regex_params(spec)
        return {
            "en": f"every match of the pattern {params.pattern} replaced by '{params.replacement}'",
            "zh": f"与模式 {params.pattern} 匹配的每一段替换为“{params.replacement}”",
        }
    if kind == "date_shift":
        shift = date_shift_params(spec)
        return {
            "en": f"moved by a secret number of days from -{shift.days} to {shift.days}, the "
            f"same for every date of one {shift.key}: intervals between the dates of one "
            f"{shift.key} are kept",
            "zh": f"平移 -{shift.days} 至 {shift.days} 天中的保密天数，同一{shift.key}的所有日期"
            "平移相同，其间隔保持不变",
        }
    if kind == "constant":
        text = spec.arg if spec.arg is not None else "***"
        return {"en": f"'{text}' for any value", "zh": f"任何值均显示为“{text}”"}
    if kind == "bucket":
        return {
            "en": f"the range of width {spec.arg} holding the value, as text 'low-high'",
            "zh": f"所在的宽度为{spec.arg}的区间，文本“下限-上限”",
        }
    return {"en": f"masked ({spec})", "zh": f"已脱敏（{spec}）"}


def _partial(p: Partial) -> tuple[str, str]:
    if p.fill is None:
        en_rest = f"each other character shown as '{p.char}' (the length stays visible)"
        zh_rest = f"其余每个字符显示为“{p.char}”（长度可见）"
    else:
        en_rest = f"the rest shown as '{p.char * p.fill}' (the length is hidden)"
        zh_rest = f"其余显示为“{p.char * p.fill}”（长度隐藏）"
    short = p.first + p.last
    en = (
        f"first {p.first} and last {p.last} characters kept, {en_rest}; "
        f"a value of at most {short} characters is hidden entirely"
    )
    zh = f"保留前{p.first}位和后{p.last}位，{zh_rest}；不超过{short}个字符的值全部隐藏"
    return en, zh
