"""Identity rules shared by every way a resident is identified (GA 467 reader, PC/SC card,
a document service): the GB 11643 check character of the 18-character citizen number, the
code tables of sex (GB/T 2261.1) and nationality (GB 3304), and the keyed hash that stands for
a resident wherever something is kept (:func:`identity_hash`).

Pure data and arithmetic: the SAM protocol parser, the social security card reader and the
synthetic cards of the simulators all use these, so no driver depends on another for them.
"""

from __future__ import annotations

import hashlib
import hmac

SEX = {"0": "未知", "1": "男", "2": "女", "9": "未说明"}  # GB/T 2261.1

NATIONS = {  # GB 3304: the 56 nationalities, 97 other, 98 foreign-born Chinese citizens
    "01": "汉",
    "02": "蒙古",
    "03": "回",
    "04": "藏",
    "05": "维吾尔",
    "06": "苗",
    "07": "彝",
    "08": "壮",
    "09": "布依",
    "10": "朝鲜",
    "11": "满",
    "12": "侗",
    "13": "瑶",
    "14": "白",
    "15": "土家",
    "16": "哈尼",
    "17": "哈萨克",
    "18": "傣",
    "19": "黎",
    "20": "傈僳",
    "21": "佤",
    "22": "畲",
    "23": "高山",
    "24": "拉祜",
    "25": "水",
    "26": "东乡",
    "27": "纳西",
    "28": "景颇",
    "29": "柯尔克孜",
    "30": "土",
    "31": "达斡尔",
    "32": "仫佬",
    "33": "羌",
    "34": "布朗",
    "35": "撒拉",
    "36": "毛南",
    "37": "仡佬",
    "38": "锡伯",
    "39": "阿昌",
    "40": "普米",
    "41": "塔吉克",
    "42": "怒",
    "43": "乌孜别克",
    "44": "俄罗斯",
    "45": "鄂温克",
    "46": "德昂",
    "47": "保安",
    "48": "裕固",
    "49": "京",
    "50": "塔塔尔",
    "51": "独龙",
    "52": "鄂伦春",
    "53": "赫哲",
    "54": "门巴",
    "55": "珞巴",
    "56": "基诺",
    "97": "其他",
    "98": "外国血统中国籍人士",
}

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def id_check_digit(first17: str) -> str:
    """GB 11643 check character (ISO 7064 MOD 11-2) of the first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK[total % 11]


def valid_id_number(number: str) -> bool:
    return (
        len(number) == 18
        and number[:17].isascii()
        and number[:17].isdigit()
        and number[17] in "0123456789X"
        and id_check_digit(number[:17]) == number[17]
    )


def identity_hash(key: bytes, id_number: str) -> str:
    """A keyed hash of an ID number: lets the centre count repeat visits, never reveals who.
    The key is the station's own (``identity.key`` in the state directory)."""
    return hmac.new(key, id_number.encode("utf-8"), hashlib.sha256).hexdigest()
