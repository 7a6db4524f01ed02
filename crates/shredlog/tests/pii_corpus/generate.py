#!/usr/bin/env python3
"""Generates the labelled evaluation corpus crates/shredlog/tests/pii_corpus/corpus.jsonl.

Each line: {"text": ..., "spans": [{"kind": ..., "value": ...}], "lang": ..., "case": ...}
`value` is the exact substring that must be removed. Lines without spans are
PII-free look-alikes (dates, prices, versions, order numbers, ...).

Phone numbers are drawn from libphonenumber's own numbering plans (the
`phonenumbers` package) so that they are valid, then written in the national
and international formats people type, with messy variations.

    .venv/bin/python crates/shredlog/tests/pii_corpus/generate.py > crates/shredlog/tests/pii_corpus/corpus.jsonl

Deterministic (fixed seed), so the checked-in output only changes with this file.
"""
import json
import random
import sys

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType

R = random.Random(20240515)

# ---------------------------------------------------------------------------
# Phone numbers

REGIONS = [
    "US", "CA", "GB", "DE", "FR", "ES", "IT", "PT", "NL", "BE", "AT", "CH", "PL", "SE",
    "DK", "FI", "IE", "CZ", "GR", "HU", "RO", "BG", "HR", "SK", "SI", "LT", "LV", "EE",
    "LU", "MT", "CY", "NO", "BR", "IN", "JP", "CN", "AU", "MX", "KR", "RU", "TR",
]
# Regions whose national format we also write without a country code.
NATIONAL_OK = {"US", "CA", "GB", "DE", "FR", "ES", "IT", "PT", "NL", "BE", "AT", "CH", "PL",
               "SE", "IE", "CZ", "HU", "BR", "IN", "JP", "CN", "AU", "FI", "GR", "RO"}


def random_valid_number(region):
    types = [PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE]
    for _ in range(200):
        t = R.choice(types)
        ex = phonenumbers.example_number_for_type(region, t)
        if ex is None:
            continue
        nsn = str(ex.national_number)
        keep = max(2, len(nsn) - 5)
        cand = nsn[:keep] + "".join(R.choice("0123456789") for _ in range(len(nsn) - keep))
        num = phonenumbers.parse("+" + str(ex.country_code) + cand, None)
        if ex.italian_leading_zero:
            num = phonenumbers.parse("+" + str(ex.country_code) + "0" + cand.lstrip("0"), None) if not cand.startswith("0") else num
        if phonenumbers.is_valid_number(num):
            return num
    return phonenumbers.example_number(region)


FULLWIDTH = str.maketrans("0123456789+-()", "０１２３４５６７８９＋－（）")


def phone_variants(region):
    num = random_valid_number(region)
    intl = phonenumbers.format_number(num, PhoneNumberFormat.INTERNATIONAL)
    nat = phonenumbers.format_number(num, PhoneNumberFormat.NATIONAL)
    e164 = phonenumbers.format_number(num, PhoneNumberFormat.E164)
    cc = str(num.country_code)
    rest = intl[len(cc) + 2:]
    out = [("intl", intl), ("e164", e164)]
    out.append(("intl-dash", "+" + cc + "-" + rest.replace(" ", "-")))
    out.append(("intl-dots", "+" + cc + "." + rest.replace(" ", ".").replace("-", ".")))
    out.append(("intl-00", "00" + cc + " " + rest))
    out.append(("intl-brackets", "(+" + cc + ") " + rest))
    out.append(("intl-nbsp", intl.replace(" ", "\u00a0")))
    out.append(("intl-fullwidth", intl.translate(FULLWIDTH)))
    if nat.startswith("0") and region not in ("IT",):
        out.append(("intl-(0)", "+" + cc + " (0)" + nat[1:].lstrip(" ")))
    if region in NATIONAL_OK:
        out.append(("national", nat))
        digits = "".join(c for c in nat if c.isdigit())
        out.append(("national-compact", digits))
        groups = nat.replace("(", "").replace(")", "").replace("-", " ").split()
        out.append(("national-dots", ".".join(groups)))
        out.append(("national-dashes", "-".join(groups)))
        if region == "JP":
            out.append(("national-fullwidth", nat.translate(FULLWIDTH)))
    if region in ("US", "CA"):
        out.append(("nanp-ext", nat + " ext. " + str(R.randint(10, 9999))))
        out.append(("nanp-x", intl + " x" + str(R.randint(10, 999))))
        out.append(("nanp-1", "1-" + nat.replace("(", "").replace(") ", "-")))
    return out


PHONE_T = {
    "en": ["Call me on {X}", "my number is {X}", "you can reach me at {X} after 5pm",
           "Phone: {X}", "text me at {X} pls", "{X} is my cell", "ring {X} tomorrow",
           "whatsapp {X}", "My mobile: {X}. Thanks!", "Please call back: {X}"],
    "de": ["Ruf mich an unter {X}", "Meine Nummer ist {X}", "Tel.: {X}", "Handy {X}, ab 18 Uhr",
           "Erreichbar unter {X}.", "Bitte zurückrufen: {X}", "Telefon: {X} (mo-fr)"],
    "fr": ["Appelez-moi au {X}", "mon numéro: {X}", "Tél : {X}", "joignable au {X} demain",
           "portable {X}, merci"],
    "es": ["Llámame al {X}", "mi teléfono es {X}", "Móvil: {X}", "mi número {X}, gracias"],
    "pt": ["Me liga no {X}", "meu celular é {X}", "WhatsApp: {X}", "telefone {X} obrigado"],
    "it": ["Chiamami al {X}", "il mio numero è {X}", "Cellulare: {X}", "tel. {X}"],
    "nl": ["Bel me op {X}", "mijn nummer is {X}", "Telefoon: {X}"],
    "pl": ["Zadzwoń pod {X}", "mój numer to {X}", "tel. {X}"],
    "ja": ["電話番号は{X}です", "携帯: {X}", "{X}までお電話ください", "連絡先：{X}"],
    "zh": ["我的电话是{X}", "手机{X}谢谢", "请拨打{X}", "联系电话：{X}"],
    "hi": ["mera number {X} hai", "mujhe {X} pe call karo", "phone: {X} pls"],
    "ru": ["Мой телефон {X}", "звоните {X}"],
    "tr": ["Numaram {X}", "beni {X} numarasından ara"],
}

EMAIL_T = {
    "en": ["Email me at {X}", "my email is {X}", "send it to {X} please", "contact: {X}",
           "<{X}>", "reply to \"{X}\"", "({X})", "It's {X}.", "mailto:{X}", "cc {X}, thanks"],
    "de": ["Schreib mir an {X}", "Meine E-Mail: {X}", "Bitte an {X} senden.", "E-Mail-Adresse lautet {X}"],
    "fr": ["Écrivez-moi à {X}", "mon adresse e-mail : {X}", "envoyez à «{X}»"],
    "es": ["Escríbeme a {X}", "mi correo es {X}", "correo: {X}"],
    "pt": ["Me manda um e-mail: {X}", "meu email é {X}"],
    "it": ["Scrivimi a {X}", "la mia email è {X}"],
    "nl": ["Mail me op {X}", "mijn e-mailadres is {X}"],
    "pl": ["Napisz na {X}", "mój e-mail to {X}"],
    "ja": ["メールは{X}まで", "メールアドレス：{X}です"],
    "zh": ["请发邮件到{X}谢谢", "我的邮箱是{X}。", "邮箱：{X}"],
    "hi": ["mera email {X} hai", "is email pe bhejo {X}"],
    "ru": ["Пишите на {X}", "почта {X}"],
}

OBF_T = {
    "en": ["write to {X}", "my email is {X} (no spam pls)", "contact {X}"],
    "de": ["Mail an {X}", "Kontakt: {X}"],
    "fr": ["écrivez à {X}"],
    "es": ["escríbeme: {X}"],
    "it": ["scrivimi: {X}"],
    "pt": ["email: {X}"],
}

IP_T = {
    "en": ["my ip is {X}", "server at {X} is down", "connect to {X}", "IP: {X}",
           "blocked {X} in the firewall", "login from {X}?", "ping {X}"],
    "de": ["Meine IP ist {X}", "Server {X} antwortet nicht", "IP-Adresse: {X}"],
    "fr": ["mon adresse IP est {X}", "le serveur {X} ne répond pas"],
    "es": ["mi IP es {X}", "el servidor {X} no responde"],
    "pt": ["meu IP é {X}"],
    "it": ["il mio IP è {X}"],
    "nl": ["mijn IP is {X}"],
    "pl": ["moje IP to {X}"],
    "ja": ["IPアドレスは{X}です", "サーバー{X}に接続できません"],
    "zh": ["我的IP是{X}", "服务器地址{X}无法连接"],
    "hi": ["mera IP {X} hai"],
}

FIRST = ["ann", "john", "maria", "jose", "li", "yuki", "anna", "pierre", "giulia", "jan",
         "piotr", "priya", "rahul", "sofia", "lukas", "emma", "noah", "mia", "oliver", "zoe",
         "o'brien", "d'angelo", "müller", "josé", "françois", "łukasz"]
LAST = ["lee", "smith", "garcia", "silva", "rossi", "dupont", "schmidt", "kowalski", "tanaka",
        "wang", "sharma", "jansen", "novak", "costa", "martin"]
DOMAINS = ["example.com", "example.org", "mail.example.co.uk", "example.de", "correo.example.es",
           "example.fr", "example.com.br", "example.in", "example.co.jp", "example.cn",
           "students.uni-example.edu", "example.io", "example.nl", "example.pl", "example.it",
           "пример.рф", "example.xn--p1ai", "bücher.example", "example.museum", "sub.example.net"]
TLD_ASCII = ["com", "org", "net", "de", "fr", "es", "it", "co.uk", "com.br", "io"]


def ascii_local():
    f = R.choice([x for x in FIRST if x.isascii()])
    l = R.choice(LAST)
    return R.choice([f, f + "." + l, f + "_" + l, f + l + str(R.randint(1, 99)), f[0] + l,
                     f + "+chat", f + "." + l + "+tag", f.capitalize() + "." + l.capitalize(),
                     (f + "." + l).upper(), f + "-" + l])


def email_value():
    case = R.choice(["plain", "plain", "plain", "plus", "upper", "unicode-local", "idn",
                     "apostrophe", "subdomain", "digits"])
    local = ascii_local()
    dom = R.choice(DOMAINS[:15])
    if case == "plus":
        local = local.split("+")[0] + "+" + R.choice(["news", "shop", "2024", "chat"])
    elif case == "upper":
        local, dom = local.upper(), dom.upper()
    elif case == "unicode-local":
        local = R.choice(["josé", "müller", "françois", "łukasz", "zoë"]) + "." + R.choice(LAST)
    elif case == "idn":
        dom = R.choice(["пример.рф", "example.xn--p1ai", "bücher.example", "例子.中国", "münchen.de"])
    elif case == "apostrophe":
        local = R.choice(["o'brien", "d'angelo", "o'neil.sean"])
    elif case == "subdomain":
        dom = R.choice(["mail.eu.example.com", "students.uni-example.edu", "dept.cs.example.ac.uk"])
    elif case == "digits":
        local = R.choice(LAST) + str(R.randint(1950, 2010))
    return case, local + "@" + dom


def obf_value():
    local = ascii_local().split("+")[0].lower()
    name, tld = R.choice(["example", "mail", "firma", "correo"]), R.choice(["com", "de", "org", "es", "fr", "it"])
    forms = [
        f"{local} at {name} dot {tld}",
        f"{local} [at] {name} [dot] {tld}",
        f"{local}(at){name}(dot){tld}",
        f"{local} (at) {name} (dot) {tld}",
        f"{local} AT {name} DOT {tld}",
        f"{local}[at]{name}.{tld}",
        f"{local} {{at}} {name} {{dot}} {tld}",
        f"{local}@{name} dot {tld}",
        f"{local} arroba {name} punto {tld}",
        f"{local} arobase {name} point {tld}",
    ]
    return R.choice(forms)


def ipv4_value():
    a = R.choice([R.randint(1, 223), 10, 192, 172, 203, 198, 85, 31])
    ip = f"{a}.{R.randint(0, 255)}.{R.randint(0, 255)}.{R.randint(1, 254)}"
    form = R.choice(["plain"] * 5 + ["port", "cidr"])
    if form == "port":
        ip += f":{R.choice([22, 80, 443, 8080, 3306, 51820])}"
    elif form == "cidr":
        ip = ip.rsplit(".", 1)[0] + ".0/" + str(R.choice([16, 24, 28]))
    return form, ip


def ipv6_value():
    h = lambda: format(R.randint(0, 0xFFFF), "x")
    forms = [
        ("full", ":".join(format(R.randint(0, 0xFFFF), "04x") for _ in range(8))),
        ("compressed", f"2001:db8::{h()}:{h()}"),
        ("compressed", f"2a00:1450:4001:{h()}::{h()}"),
        ("compressed", f"fd00::{h()}"),
        ("zone", f"fe80::{h()}:{h()}%eth0"),
        ("zone", f"fe80::1%{R.choice(['en0', 'wlan0', '3'])}"),
        ("mapped", f"::ffff:192.0.2.{R.randint(1, 254)}"),
        ("bracket-port", f"[2001:db8::{h()}]:{R.choice([443, 8080])}"),
        ("upper", f"2001:DB8:{h().upper()}::{h().upper()}"),
        ("loopback", "::1"),
    ]
    return R.choice(forms)


def messy(template, value, lang):
    """Returns (text, case-suffix) with messy surroundings."""
    r = R.random()
    if lang in ("ja", "zh"):
        return template.replace("{X}", value), "cjk-adjacent"
    if r < 0.08:
        return template.replace("{X}", value) + "!!", "punct"
    if r < 0.14:
        return "“" + template.replace("{X}", value) + "”", "quotes"
    return template.replace("{X}", value), ""


def pii_lines():
    lines = []
    # Phones
    for region in REGIONS:
        n = 40 if region in NATIONAL_OK else 14
        for _ in range(n):
            case, value = R.choice(phone_variants(region))
            lang = {"DE": "de", "AT": "de", "CH": "de", "FR": "fr", "BE": "fr", "ES": "es", "MX": "es",
                    "PT": "pt", "BR": "pt", "IT": "it", "NL": "nl", "PL": "pl", "JP": "ja", "CN": "zh",
                    "IN": "hi", "RU": "ru", "TR": "tr"}.get(region, "en")
            if R.random() < 0.25:
                lang = "en"
            t = R.choice(PHONE_T[lang])
            text, m = messy(t, value, lang)
            lines.append({"text": text, "spans": [{"kind": "phone", "value": value}], "lang": lang,
                          "case": f"phone/{region}/{case}" + (f"/{m}" if m else "")})
    # Two numbers separated by one space, and phone + email on one line.
    for _ in range(40):
        r1, r2 = R.choice(["DE", "GB", "FR", "US", "IT", "ES"]), R.choice(["DE", "GB", "NL", "BR", "IN"])
        a = phonenumbers.format_number(random_valid_number(r1), PhoneNumberFormat.INTERNATIONAL)
        b = phonenumbers.format_number(random_valid_number(r2), PhoneNumberFormat.INTERNATIONAL)
        lines.append({"text": f"numbers: {a} {b}", "spans": [{"kind": "phone", "value": a}, {"kind": "phone", "value": b}],
                      "lang": "en", "case": "phone/two-numbers"})
    for _ in range(30):
        r1 = R.choice(["DE", "FR", "GB", "JP"])
        n1 = random_valid_number(r1)
        a = phonenumbers.format_number(n1, PhoneNumberFormat.NATIONAL)
        b = phonenumbers.format_number(random_valid_number(r1), PhoneNumberFormat.NATIONAL)
        lines.append({"text": f"Tel {a} {b}", "spans": [{"kind": "phone", "value": a}, {"kind": "phone", "value": b}],
                      "lang": "en", "case": "phone/two-national"})
    # Emails
    for _ in range(420):
        lang = R.choice(list(EMAIL_T))
        case, value = email_value()
        text, m = messy(R.choice(EMAIL_T[lang]), value, lang)
        lines.append({"text": text, "spans": [{"kind": "email", "value": value}], "lang": lang,
                      "case": f"email/{case}" + (f"/{m}" if m else "")})
    for _ in range(160):
        lang = R.choice(list(OBF_T))
        value = obf_value()
        lines.append({"text": R.choice(OBF_T[lang]).replace("{X}", value),
                      "spans": [{"kind": "obfuscated-email", "value": value}], "lang": lang,
                      "case": "obfuscated-email"})
    # IPs
    for _ in range(260):
        lang = R.choice(list(IP_T))
        case, value = ipv4_value()
        text, m = messy(R.choice(IP_T[lang]), value, lang)
        lines.append({"text": text, "spans": [{"kind": "ipv4", "value": value}], "lang": lang,
                      "case": f"ipv4/{case}" + (f"/{m}" if m else "")})
    for _ in range(260):
        lang = R.choice(list(IP_T))
        case, value = ipv6_value()
        text, m = messy(R.choice(IP_T[lang]), value, lang)
        lines.append({"text": text, "spans": [{"kind": "ipv6", "value": value}], "lang": lang,
                      "case": f"ipv6/{case}" + (f"/{m}" if m else "")})
    # Mixed lines
    for _ in range(120):
        _, e = email_value()
        region = R.choice(["GB", "DE", "US", "FR", "BR", "IN"])
        p = phonenumbers.format_number(random_valid_number(region), PhoneNumberFormat.INTERNATIONAL)
        _, ip = ipv4_value()
        text = R.choice([
            f"Hi, I'm Ann ({e}), call {p} or check {ip}",
            f"Kontakt: {e} / {p}",
            f"{e}、{p}までご連絡ください",
            f"email {e} phone {p}",
        ])
        spans = [{"kind": "email", "value": e}, {"kind": "phone", "value": p}]
        if ip in text:
            spans.append({"kind": "ipv4", "value": ip})
        lines.append({"text": text, "spans": spans, "lang": "mixed", "case": "mixed"})
    return lines


# ---------------------------------------------------------------------------
# PII-free look-alikes

def rdate():
    y, m, d = R.randint(1990, 2030), R.randint(1, 12), R.randint(1, 28)
    return R.choice([f"{y}-{m:02d}-{d:02d}", f"{d:02d}.{m:02d}.{y}", f"{m:02d}/{d:02d}/{y}",
                     f"{d}/{m}/{y}", f"{d:02d}-{m:02d}-{y}", f"{y}/{m:02d}/{d:02d}", f"{y}年{m}月{d}日",
                     f"{d}.{m}.{y % 100:02d}", f"{y}{m:02d}{d:02d}", f"{y}-{m:02d}-{d:02d}T{R.randint(0, 23):02d}:{R.randint(0, 59):02d}:00Z",
                     f"{d:02d}.{m:02d}.{y} {R.randint(0, 23):02d}:{R.randint(0, 59):02d}"])


def rtime():
    return R.choice([f"{R.randint(0, 23):02d}:{R.randint(0, 59):02d}", f"{R.randint(0, 23)}:{R.randint(0, 59):02d}:{R.randint(0, 59):02d}",
                     f"{R.randint(1, 12)}.{R.randint(0, 59):02d} Uhr", f"{R.randint(8, 11)}:00-{R.randint(12, 18)}:00",
                     f"{R.randint(8, 11)}h{R.randint(0, 5)}0"])


def rprice():
    a = R.randint(1, 9999999)
    return R.choice([f"€{a:,}".replace(",", "."), f"${a:,}.{R.randint(0, 99):02d}", f"{a:,} €".replace(",", " "),
                     f"R$ {a:,},{R.randint(0, 99):02d}".replace(",", "X").replace("X", ".", a > 999), f"₹{a:,}",
                     f"¥{a:,}", f"{a:,}円", f"{a} zł", f"{a:,} kr".replace(",", " "), f"USD {a:,}.00",
                     f"{a / 100:.2f} EUR", f"CHF {a:,}.-"])


def rversion():
    return R.choice([f"v{R.randint(0, 20)}.{R.randint(0, 30)}.{R.randint(0, 99)}", f"{R.randint(0, 9)}.{R.randint(0, 20)}.{R.randint(0, 9)}",
                     f"version {R.randint(1, 15)}.{R.randint(0, 9)}.{R.randint(0, 9)}.{R.randint(0, 9999)}",
                     f"build {R.randint(10, 22)}.0.{R.randint(10000, 22999)}.{R.randint(100, 4000)}",
                     f"Python 3.{R.randint(6, 13)}.{R.randint(0, 12)}", f"iOS {R.randint(12, 18)}.{R.randint(0, 6)}.{R.randint(0, 3)}",
                     f"release-{R.randint(1, 9)}.{R.randint(0, 9)}.{R.randint(0, 9)}-rc{R.randint(1, 5)}", f"Chrome/{R.randint(100, 130)}.0.{R.randint(1000, 6999)}.{R.randint(10, 199)}",
                     f"react@{R.randint(15, 19)}.{R.randint(0, 3)}.{R.randint(0, 9)}"])


def digits(n, first="123456789"):
    return R.choice(first) + "".join(R.choice("0123456789") for _ in range(n - 1))


def rorder():
    return R.choice([
        f"Order #{digits(3)}-{digits(7)}-{digits(7)}", f"order {digits(8)}", f"Bestellnummer {digits(4)}-{digits(4)}",
        f"commande n° {R.randint(2019, 2025)}-{digits(6)}", f"pedido {digits(9)}", f"ordine n. {digits(10)}",
        f"Tracking: 1Z{digits(3)}AA{digits(10)}", f"tracking number {digits(4)} {digits(4)} {digits(4)} {digits(4)} {digits(4)} {digits(2)}",
        f"Sendungsnummer {digits(14)}", f"invoice INV-{R.randint(2019, 2025)}-{digits(5)}", f"ticket #{digits(6)}",
        f"订单号{digits(18)}", f"注文番号 {digits(3)}-{digits(7)}-{digits(7)}", f"case {digits(8)}",
        f"ref. {digits(3)} {digits(3)} {digits(3)}", f"numer zamówienia {digits(10)}", f"LX{digits(9)}DE",
        f"booking ref {digits(6)}", f"customer ID {digits(10)}", f"account no. {digits(8)}",
        f"confirmation {digits(10)}", f"PNR {digits(6)}", f"SKU {digits(13)}", f"IMEI {digits(15)}",
    ])


def risbn():
    core = "978" + "".join(R.choice("0123456789") for _ in range(9))
    s = sum((1 if i % 2 == 0 else 3) * int(c) for i, c in enumerate(core))
    isbn13 = core + str((10 - s % 10) % 10)
    return R.choice([f"ISBN {isbn13[:3]}-{isbn13[3]}-{isbn13[4:6]}-{isbn13[6:12]}-{isbn13[12]}", f"ISBN-13: {isbn13}",
                     f"ISBN 0-306-40615-2", f"isbn {isbn13}", f"ISBN 3-16-148410-X"])


def rfile():
    return R.choice([f"IMG_{digits(8, '2')}_{digits(6)}.jpg", f"report-{rdate()[:10]}.pdf", f"backup_{R.randint(2019, 2025)}.{R.randint(1, 12):02d}.{R.randint(1, 28):02d}.tar.gz",
                     f"scan{digits(10)}.pdf", f"invoice_{digits(9)}.pdf", f"Screenshot 2024-0{R.randint(1, 9)}-1{R.randint(0, 9)} at 10.3{R.randint(0, 9)}.{R.randint(10, 59)}.png",
                     f"photo_{digits(4)}-{digits(3)}-{digits(4)}.png", f"VID-{digits(8, '2')}-WA{digits(4)}.mp4", "icon@2x.png", "logo@3x.webp",
                     f"data_v{R.randint(1, 3)}.{R.randint(0, 9)}.{R.randint(0, 9)}.csv"])


def rurl():
    return R.choice([f"https://example.com/docs/v{R.randint(1, 3)}.{R.randint(0, 12)}.{R.randint(0, 9)}/index.html",
                     f"https://shop.example.com/item/{digits(9)}?ref=chat", f"www.example.org/news/{R.randint(2019, 2025)}/{R.randint(1, 12):02d}/{R.randint(1, 28):02d}",
                     f"https://youtu.be/dQw4w9WgXcQ?t={R.randint(10, 999)}", f"https://example.com/orders/{digits(10)}",
                     f"http://localhost:{R.choice([3000, 8080, 5173])}/api", "git@github.com:org/repo.git",
                     f"https://maps.example.com/@52.{digits(6)},13.{digits(6)},15z", f"https://example.com/p/{digits(3)}-{digits(3)}-{digits(4)}/"])


def rmention():
    return R.choice(["@ann", "@john.doe", "@support-team", "@maria_99", "@here", "@channel", "@Ann Lee"])


def rmisc():
    return R.choice([
        f"{R.randint(1, 9)} x {R.randint(1, 9)} = {R.randint(1, 81)}", f"score {R.randint(0, 5)}-{R.randint(0, 5)}",
        f"{R.randint(1, 100)}% off", f"room {R.randint(100, 999)}, floor {R.randint(1, 9)}", f"{R.randint(10000, 99999)} Berlin",
        f"population {R.randint(1, 999)} {R.randint(100, 999):03d} {R.randint(100, 999):03d}", f"{R.randint(-20, 40)}°C",
        f"{R.randint(1, 500)} km", f"{R.randint(1, 99)} kg", "C++17", "std::vector<int>", f"#{R.randint(0, 0xFFFFFF):06x}",
        f"commit {format(R.getrandbits(28), '07x')}", "550e8400-e29b-41d4-a716-446655440000", f"{R.randint(1, 12)}:{R.randint(0, 59):02d} pm",
        f"chapter {R.randint(1, 30)}.{R.randint(1, 9)}.{R.randint(1, 9)}", f"1.{R.randint(1, 9)}.{R.randint(1, 9)}.{R.randint(1, 9)}.{R.randint(1, 9)}",
        f"ratio {R.randint(1, 9)}:{R.randint(1, 9)}:{R.randint(1, 9)}", f"PLZ {R.randint(10000, 99999)}", f"{R.randint(1, 99)} {R.randint(100, 999)} {R.randint(100, 999)} views",
        f"lat 52.{digits(4)}, lon 13.{digits(4)}", f"MAC 00:1a:2b:{R.randint(10, 99)}:4d:5e", f"{R.randint(1990, 2024)}-{R.randint(1990, 2024)}",
        f"IBAN-like code AB{digits(2)}", f"see page {R.randint(1, 300)}", f"{R.randint(1, 9)},{R.randint(10, 99)} €",
        f"₹{R.randint(1, 99)},{R.randint(10, 99)},{R.randint(100, 999)}", f"{R.randint(1, 9)}.{R.randint(100, 999)}.{R.randint(100, 999)} Einwohner",
    ])


NEG_T = {
    "en": ["see you on {N}", "it costs {N}", "updated to {N} yesterday", "my {N} hasn't arrived", "{N}",
           "file is {N}", "check {N}", "ping {N} about it", "meeting at {N} ok?", "the answer is {N}"],
    "de": ["Termin am {N}", "kostet {N}", "Update auf {N}", "{N} ist noch nicht da", "siehe {N}"],
    "fr": ["rendez-vous le {N}", "ça coûte {N}", "mise à jour {N}", "voir {N}"],
    "es": ["nos vemos el {N}", "cuesta {N}", "actualizado a {N}", "mira {N}"],
    "pt": ["até {N}", "custa {N}", "versão {N}", "veja {N}"],
    "it": ["ci vediamo il {N}", "costa {N}", "vedi {N}"],
    "nl": ["tot {N}", "kost {N}", "zie {N}"],
    "pl": ["do zobaczenia {N}", "kosztuje {N}", "zobacz {N}"],
    "ja": ["{N}です", "{N}にお願いします", "{N}を確認してください"],
    "zh": ["{N}谢谢", "请看{N}", "{N}已经发货了"],
    "hi": ["{N} dekh lo", "{N} ho gaya"],
}


def negative_lines():
    lines = []
    gens = [("date", rdate, 420), ("time", rtime, 160), ("price", rprice, 320), ("version", rversion, 300),
            ("order", rorder, 420), ("isbn", risbn, 90), ("file", rfile, 200), ("url", rurl, 200),
            ("mention", rmention, 90), ("misc", rmisc, 420)]
    for name, gen, n in gens:
        for _ in range(n):
            lang = R.choice(list(NEG_T))
            lines.append({"text": R.choice(NEG_T[lang]).replace("{N}", gen()), "spans": [], "lang": lang,
                          "case": f"negative/{name}"})
    # Lines that mention the words without the data.
    plain = ["send me an email", "call me later", "what's your ip?", "my phone died lol", "email at 5",
             "we meet at noon", "look at this dot com bubble", "sign up at example.com", "visit shop.example.com today",
             "the @ sign", "dot dot dot", "10 at 5 dot 3", "Bitte ruf mich morgen an", "電話してね", "打电话给我",
             "mi número es privado", "tel. bitte per Mail", "it's 404 again", "HTTP 503 on /api/v2/users",
             "Preis: 1.299,00 €", "Gewinn 12.345.678 Euro", "Stand 2024/25", "the 3:16 verse", "pi is 3.14159",
             "mailto: links are broken", "ping 127 times"]
    for t in plain:
        lines.append({"text": t, "spans": [], "lang": "mixed", "case": "negative/words"})
    return lines


# ---------------------------------------------------------------------------
# Section 2 (RULES_VERSION 2, issue 13): the contexts a held-out evaluation
# found missed. Its own seed, appended after section 1, so that the lines of
# section 1 stay as they were.

S = random.Random(13_2025)

EXTRA_REGIONS = ["AR", "ZA", "NG", "EG", "VN", "TH", "ID", "PH", "MY", "SA", "AE", "IL", "UA",
                 "KZ", "CL", "CO", "PE", "NZ", "SG", "HK", "TW", "PK", "BD", "KE", "MA"]

S2_PHONE_WORDS = ["tel", "Tel", "TEL", "ph", "Ph", "phone", "Phone", "mob", "mobile", "cell", "Cell",
                  "whatsapp", "WhatsApp", "fax", "Fax", "Handy", "Telefon", "tlf", "tél", "telefono",
                  "celular", "電話", "电话", "手机", "携帯", "전화", "тел", "hotline", "contact"]
S2_SEPS = ["=", "#", ":", ": ", "=", "#", "", ".", ". ", " = ", ": #", ":-", "/", " - "]
S2_WRAPS = [("", ""), ("", ""), ("", ""), ("**", "**"), ("__", "__"), ("*", "*"), ("`", "`"),
            ("_", "_"), ("[", "]"), ("(", ")"), ("\"", "\""), ("'", "'"), ("「", "」"), ("**`", "`**")]
S2_EXTS = [" x{N}", "x{N}", " x {N}", " X{N}", " ext {N}", " ext.{N}", ";ext={N}", " Ext. {N}",
           ", ext. {N}", " # {N}", " (ext. {N})"]
S2_TAILS = ["", "", "", ".", "!", " pls", " thx", " (after 6pm)", "。", "です", "谢谢", " 🙏"]


def s2_number(region):
    """A valid number of `region`, by the same recipe as section 1 but from S."""
    types = [PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE, PhoneNumberType.TOLL_FREE]
    for _ in range(200):
        ex = phonenumbers.example_number_for_type(region, S.choice(types))
        if ex is None:
            continue
        nsn = phonenumbers.national_significant_number(ex)
        keep = max(2, len(nsn) - 4)
        cand = nsn[:keep] + "".join(S.choice("0123456789") for _ in range(len(nsn) - keep))
        num = phonenumbers.parse("+" + str(ex.country_code) + cand, None)
        if phonenumbers.is_valid_number(num):
            return num
    return phonenumbers.example_number(region)


def s2_regroup(digits):
    """The digits cut into groups of 2-4 at random (unusual groupings)."""
    out, i = [], 0
    while i < len(digits):
        k = S.choice([2, 3, 3, 4, 4])
        if len(digits) - i - k == 1:
            k += 1
        out.append(digits[i:i + k])
        i += k
    return out


def s2_phone_value(region):
    num = s2_number(region)
    intl = phonenumbers.format_number(num, PhoneNumberFormat.INTERNATIONAL)
    nat = phonenumbers.format_number(num, PhoneNumberFormat.NATIONAL)
    e164 = phonenumbers.format_number(num, PhoneNumberFormat.E164)
    nat_digits = "".join(c for c in nat if c.isdigit())
    forms = [("intl", intl), ("e164", e164), ("intl-dots", intl.replace(" ", ".").replace("-", ".").replace("+.", "+"))]
    if len(phonenumbers.national_significant_number(num)) >= 7:
        sep = S.choice([".", ".", "-", " "])
        forms += [("national", nat), ("national-regrouped", sep.join(s2_regroup(nat_digits))),
                  ("national-compact", nat_digits)]
    return S.choice(forms)


def s2_phone_lines():
    lines = []
    regions = REGIONS + EXTRA_REGIONS
    for _ in range(900):
        region = S.choice(regions)
        case, value = s2_phone_value(region)
        if S.random() < 0.15:
            value += S.choice(S2_EXTS).replace("{N}", str(S.randint(1, 99999)))
            case += "+ext"
        r = S.random()
        if r < 0.55:
            # A label glued to the value, perhaps in markup.
            a, b = S.choice(S2_WRAPS)
            word, sep = S.choice(S2_PHONE_WORDS), S.choice(S2_SEPS)
            if S.random() < 0.3:
                word = S.choice(["my ", "our ", "Office ", "home ", "new "]) + word
            text = f"{word}{sep}{a}{value}{b}"
            ctx = "label"
        elif r < 0.75 and not case.startswith("national"):
            # No label; markup or brackets around it.
            a, b = S.choice(S2_WRAPS)
            text = S.choice(["{V}", "ok {V}", "Ann {V}", "- {V}", "-> {V}", "{V} (home)", "我的{V}"]).replace(
                "{V}", f"{a}{value}{b}")
            ctx = "bare"
        else:
            # Glued straight to a word.
            word = S.choice(["tel", "Tel.", "ph", "phone", "mob", "cell", "whatsapp", "WA", "fax",
                             "call", "ring", "Handy", "numero", "电话", "電話", "手机"])
            text = word + value
            ctx = "glued"
        text += S.choice(S2_TAILS)
        lines.append({"text": text, "spans": [{"kind": "phone", "value": value}], "lang": "mixed",
                      "case": f"phone2/{ctx}/{region}/{case}"})
    # A phone word a few words before or after; numbers undivided or in groups.
    sentences = ["you can reach me on {X} after 6", "my cell changed to {X}", "Rufen Sie mich an: {X}",
                 "contattami al {X} domani", "{X}으로 전화주세요", "有事打{X}", "请拨打{X}", "звоните {X} вечером",
                 "ring me back on {X} pls", "text me at {X} later", "{X} is my new mobile"]
    for _ in range(160):
        region = S.choice(regions)
        case, value = s2_phone_value(region)
        lines.append({"text": S.choice(sentences).replace("{X}", value), "spans": [{"kind": "phone", "value": value}],
                      "lang": "mixed", "case": f"phone2/sentence/{region}/{case}"})
    # Non-geographic calling codes (+800 freephone, +882, …).
    for _ in range(40):
        cc = S.choice(sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS))
        ex = phonenumbers.example_number_for_non_geo_entity(cc)
        if ex is None:
            continue
        nsn = phonenumbers.national_significant_number(ex)
        num = ex
        for _ in range(50):
            cand = nsn[:-3] + "".join(S.choice("0123456789") for _ in range(3))
            n = phonenumbers.parse("+" + str(cc) + cand, None)
            if phonenumbers.is_valid_number(n):
                num = n
                break
        value = phonenumbers.format_number(num, S.choice([PhoneNumberFormat.INTERNATIONAL, PhoneNumberFormat.E164]))
        text = S.choice(["freephone {X}", "{X}", "sat phone: {X}", "call {X} (free)"]).replace("{X}", value)
        lines.append({"text": text, "spans": [{"kind": "phone", "value": value}], "lang": "mixed",
                      "case": f"phone2/non-geo/{cc}"})
    # Two numbers, one label.
    for _ in range(60):
        a, b = (phonenumbers.format_number(s2_number(S.choice(regions)), PhoneNumberFormat.INTERNATIONAL)
                for _ in range(2))
        text = S.choice(["tel={A},{B}", "ph#{A} / {B}", "Phones: **{A}** or **{B}**", "{A};{B}",
                         "tel:{A}|{B}"]).replace("{A}", a).replace("{B}", b)
        lines.append({"text": text, "spans": [{"kind": "phone", "value": a}, {"kind": "phone", "value": b}],
                      "lang": "mixed", "case": "phone2/two"})
    return lines


S2_LOCALS = ["j", "b", "z", "k", "m", "xy", "li", "ab", "q1", "t_"]
S2_SHORT_DOMAINS = ["x.co", "x.io", "ab.de", "q.me", "mx.fr", "y.ai", "a.us", "io.nl", "b.ly", "c.cc"]
S2_EMAIL_T = ["{X}", "mail:{X}", "MAILTO:{X}", "mailto:{X}", "email={X}", "E-mail#{X}", "**{X}**",
              "`{X}`", "_{X}_", "[{X}]", "({X})", "<{X}>", "邮箱{X}", "{X}谢谢", "请联系{X}。", "メール{X}まで",
              "이메일{X}로", "连络：{X}", "[mail](mailto:{X})", "to: {X}", "email: {X} / tel: n/a"]


def s2_email_lines():
    lines = []
    for _ in range(260):
        r = S.random()
        if r < 0.6:
            local = S.choice(S2_LOCALS)
        else:
            local = ascii_local_s2()
        dom = S.choice(S2_SHORT_DOMAINS) if S.random() < 0.7 else S.choice(DOMAINS)
        if S.random() < 0.1:
            local, dom = local.upper(), dom.upper()
        value = local + "@" + dom
        text = S.choice(S2_EMAIL_T).replace("{X}", value)
        lines.append({"text": text, "spans": [{"kind": "email", "value": value}], "lang": "mixed",
                      "case": "email2"})
    return lines


def ascii_local_s2():
    f = S.choice([x for x in FIRST if x.isascii() and "'" not in x])
    return S.choice([f, f[0], f + "." + S.choice(LAST), f + str(S.randint(1, 9))])


S2_AT = [" at ", " AT ", "(at)", " (at) ", "[at]", " [at] ", "{at}", " {at} ", "<at>", " <at> ", " -at- ",
         "-at-", "_at_", " _at_ ", "(@)", "[@]", " @ ", " [ at ] ", " ( at ) ", " (AT) ", " [AT] ",
         " arroba ", " (arroba) ", " arobase ", " chiocciola ", " małpa ", " [ät] ", "#at#",
         " *at* ", " / at / "]
S2_DOT = [" dot ", " DOT ", "(dot)", " (dot) ", "[dot]", " [dot] ", "{dot}", " {dot} ", "<dot>", " -dot- ",
          "-dot-", "_dot_", "(.)", "[.]", " . ", " [ dot ] ", " ( dot ) ", " (DOT) ", " punto ", " point ",
          " punkt ", " kropka ", ".", " *dot* ", "#dot#"]


def s2_obf_lines():
    lines = []
    for _ in range(240):
        local = ascii_local_s2().lower()
        at = S.choice(S2_AT)
        dot = S.choice(S2_DOT)
        name = S.choice(["example", "mail", "firma", "web", "posteo", "gmail", "uni-koeln", "mail.example"])
        tld = S.choice(["com", "de", "org", "net", "fr", "es", "pl", "co.uk", "io"])
        value = local + at + dot.join(name.split(".") + tld.split("."))
        if dot == "." and at.strip() in ("at", "AT") and not any(c in local for c in "._+0123456789"):
            value = local + at + name + " dot " + tld
        text = S.choice(["{X}", "mail me: {X}", "Kontakt {X}", "contact -> {X}", "{X} (no spam)",
                         "email {X} pls", "address: {X}.", "écrivez à {X}", "邮箱 {X}"]).replace("{X}", value)
        lines.append({"text": text, "spans": [{"kind": "obfuscated-email", "value": value}],
                      "lang": "mixed", "case": "obfuscated-email2"})
    # A plain "at" and real dots, with a mail word before it or a mail provider.
    for _ in range(40):
        local = S.choice([x for x in FIRST if x.isascii() and "'" not in x])
        if S.random() < 0.5:
            value = f"{local} at {S.choice(['gmail.com', 'yahoo.fr', 'web.de', 'outlook.com', 'gmx.net', 'posteo.de'])}"
            text = S.choice(["{X}", "it's {X}", "ask {X}", "-> {X}"]).replace("{X}", value)
        else:
            value = f"{local} at {S.choice(['example.com', 'firma.de', 'acme.org', 'uni-koeln.de'])}"
            text = S.choice(["email: {X}", "mail me {X}", "e-mail {X}, thx", "my email is {X}",
                             "Kontakt: {X}", "correo {X}"]).replace("{X}", value)
        lines.append({"text": text, "spans": [{"kind": "obfuscated-email", "value": value}],
                      "lang": "mixed", "case": "obfuscated-email2/plain-at"})
    return lines


def s2_v4():
    return f"{S.choice([10, 192, 172, 85, 203, S.randint(1, 223)])}.{S.randint(0, 255)}.{S.randint(0, 255)}.{S.randint(1, 254)}"


def s2_ip_lines():
    lines = []
    for _ in range(200):
        a, b = s2_v4(), s2_v4()
        sep = S.choice(["-", "-", " - ", "–", " – ", "..", " to ", "~", "—"])
        text = S.choice(["DHCP range {A}{S}{B}", "pool {A}{S}{B}", "{A}{S}{B}", "range={A}{S}{B}",
                         "allowed: {A}{S}{B}.", "地址段{A}{S}{B}"])
        text = text.replace("{A}", a).replace("{S}", sep).replace("{B}", b)
        lines.append({"text": text, "spans": [{"kind": "ipv4", "value": a}, {"kind": "ipv4", "value": b}],
                      "lang": "mixed", "case": "ipv4-2/range"})
    for _ in range(160):
        ip = s2_v4()
        if S.random() < 0.2:
            ip += S.choice([":8080", ":22", "/24", "/32"])
        v = f"{S.randint(1, 12)}.{S.randint(0, 20)}.{S.randint(0, 9)}"
        text = S.choice([
            "v{V} on {A}", "release {V}, host {A}", "{A} runs {V}", "nginx/{V} {A}", "{A} (app {V})",
            "upgraded to {V}; ip {A}", "Python {V} @ {A}", "agent {V} reports {A}", "update {A} firewall",
            "patch {A} tonight", "ip={A}", "addr:{A}", "**{A}**", "`{A}`", "{A},{B}", "{A};{B}", "{A} {B}",
            "ip{A}", "host{A}", "从{A}登录", "IP：{A}です",
        ]).replace("{V}", v).replace("{A}", ip)
        spans = [{"kind": "ipv4", "value": ip}]
        if "{B}" in text:
            b = s2_v4()
            text = text.replace("{B}", b)
            spans.append({"kind": "ipv4", "value": b})
        lines.append({"text": text, "spans": spans, "lang": "mixed", "case": "ipv4-2/context"})
    for _ in range(80):
        h = lambda: format(S.randint(0, 0xFFFF), "x")
        a, b = f"2001:db8::{h()}", f"2001:db8::{h()}:{h()}"
        text = S.choice(["{A}-{B}", "{A} - {B}", "range {A}–{B}", "ip6={A}", "addr:{A}", "**{A}**",
                         "{A},{B}", "v6 {A} (v2.1.0)"]).replace("{A}", a).replace("{B}", b)
        spans = [{"kind": "ipv6", "value": a}] + ([{"kind": "ipv6", "value": b}] if b in text else [])
        lines.append({"text": text, "spans": spans, "lang": "mixed", "case": "ipv6-2"})
    return lines


def s2_negative_lines():
    d = lambda n: digits(n)
    gens = [
        lambda: S.choice(["id=", "user=", "session=", "ts=", "page=", "ref=", "build#", "order#", "ticket#",
                          "PR#", "issue #", "case#", "invoice=", "sku=", "item#", "uid:", "pid="]) + d(S.choice([7, 8, 9, 10, 11, 12])),
        lambda: S.choice(["**", "`", "_", "*"]) + S.choice([rdate(), rprice(), rversion(), f"{d(3)}-{d(4)}"]) + S.choice(["**", "`", "_", "*"]),
        lambda: f"{S.randint(1, 9)}.{S.randint(0, 9)}.{S.randint(0, 9)}-{S.randint(1, 9)}.{S.randint(0, 9)}.{S.randint(0, 9)}",
        lambda: f"versions {S.randint(1, 9)}.{S.randint(0, 9)}.{S.randint(0, 9)}.{S.randint(0, 9)}-{S.randint(1, 9)}.{S.randint(0, 9)}.{S.randint(0, 9)}.{S.randint(0, 9)}",
        lambda: f"{S.choice(['1920x1080', '2560x1440', '800x600'])} and {d(3)} {d(4)}x{d(2)}",
        lambda: S.choice(["hotel ", "Telegram ", "telemetry ", "phone case ", "cellar ", "callback id "]) + d(S.choice([7, 8, 9])),
        lambda: S.choice(["订单号", "注文", "单号", "編號", "票号"]) + d(S.choice([9, 10, 11, 12])),
        lambda: S.choice(["Chrome/", "Firefox/", "Version/", "Safari/"]) + f"{S.randint(1, 130)}.{S.randint(0, 9)}.{S.randint(0, 9999)}.{S.randint(0, 200)}",
        lambda: f"see you at {S.randint(1, 12)} at the {S.choice(['cafe', 'office', 'gym'])} dot",
        lambda: S.choice(["meet me at ", "look at ", "available at ", "sign up at ", "we're at ",
                          "reply at ", "buy it at "]) + S.choice(["amazon", "example", "shop.example", "ebay"]) + S.choice([".com", " dot com", ".de"]),
        lambda: f"{rdate()} - {rdate()}",
        lambda: f"{S.randint(1, 9)} x {S.randint(1, 999)} = {S.randint(1, 9999)}",
        lambda: f"Tel Aviv {S.randint(1990, 2030)}, call at {rtime()}",
        lambda: f"phone: {S.choice(['iPhone 15', 'Pixel 8', 'Galaxy S24'])}, battery {S.randint(1, 99)}%",
        lambda: S.choice(["v", "ver", "rc", "build", "r", "b"]) + f"{S.randint(1, 20)}.{S.randint(0, 9)}.{S.randint(0, 9)}.{S.randint(0, 99)}",
        lambda: S.choice(["order number: ", "ticket number ", "case no. ", "invoice number #", "Auftragsnummer: "]) + d(S.choice([8, 9, 10, 11])),
        lambda: S.choice(["look_at_me.py", "created_at_utc.rs", "see updated-at-field.md", "run check_at_start.sh",
                          "meet (at) noon", "I'm at home (dot) lol", "at-least-once.de docs", "C++17 and C++20"]),
        lambda: f"{S.randint(1, 9)}+{S.randint(1, 9)}={S.randint(2, 18)}, {S.randint(1, 9)}x{S.randint(100, 999)}",
    ]
    lines = []
    for _ in range(900):
        lines.append({"text": S.choice(gens)(), "spans": [], "lang": "mixed", "case": "negative2"})
    return lines


# ---------------------------------------------------------------------------
# Section 3 (RULES_VERSION 3): the classes a development set (the held-out
# generator with other seeds) and probes of libphonenumber's formats found
# missed or falsely flagged. Its own seed, appended after section 2.

U = random.Random(3_2026)

# Regions whose national numbers (or some of their services) have 4-6 digits.
SHORT_REGIONS = ["AC", "VU", "SB", "TK", "NU", "TV", "KI", "TO", "WS", "SH", "FK", "NR", "CK",
                 "PW", "NF", "TL", "GL", "FO", "AD", "MC"]
NO_TRUNK_REGIONS = ["AW", "BZ", "CV", "BN", "QA", "IS", "MV", "GM", "DK", "NO", "ES", "PT", "GR", "PL"]
S3_VERBS = ["Llámame al {X}", "llámanos al {X}", "belt u mij op {X}", "bel me op {X}", "soita {X}",
            "hubungi {X}", "beni {X} numaradan arayın", "gọi {X}", "zavolejte na {X}", "ring mig på {X}",
            "τηλ. {X}", "טלפון {X}", "هاتف {X}", "โทร {X}", "कॉल करें {X}", "appelez le {X}",
            "chiamami al {X}", "me liga no {X}"]
S3_WEAK = ["my number is {X}", "my new number is {X}", "il mio numero è {X}", "meine Nummer ist {X}",
           "mon numéro est {X}", "mi número es {X}", "new number: {X}", "neue Nummer: {X}", "nuevo número {X}",
           "numero-{X}", "번호#{X}", "번호:{X}", "номер {X}", "号码：{X}", "number {X}"]
S3_NEAR = ["text me on {X} when you land", "reach me on {X} after 6", "SMS to {X}", "call me on {X}",
           "my phone number is {X}!", "whatsapp me {X}"]
S3_BARE = ["{X}", "ok {X}", "({X})", "[{X}]", "- {X}", "{X} (office)", "**{X}**", "{X}です", "我{X}", "«{X}»"]


def s3_number(region, types=(PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE, PhoneNumberType.TOLL_FREE,
                             PhoneNumberType.UAN, PhoneNumberType.SHARED_COST)):
    for _ in range(200):
        ex = phonenumbers.example_number_for_type(region, U.choice(types))
        if ex is None:
            continue
        nsn = phonenumbers.national_significant_number(ex)
        keep = max(len(nsn) - 3, (len(nsn) + 1) // 2)
        cand = nsn[:keep] + "".join(U.choice("0123456789") for _ in range(len(nsn) - keep))
        num = phonenumbers.parse("+" + str(ex.country_code) + cand, None)
        if phonenumbers.is_valid_number(num):
            return num
    return phonenumbers.example_number(region)


def s3_phone_lines():
    lines = []

    def add(text, value, case):
        lines.append({"text": text, "spans": [{"kind": "phone", "value": value}], "lang": "mixed", "case": case})

    # Short national numbers after +CC / 00CC / tel:, in any context.
    for _ in range(250):
        num = s3_number(U.choice(SHORT_REGIONS))
        intl = phonenumbers.format_number(num, PhoneNumberFormat.INTERNATIONAL)
        cc = str(num.country_code)
        rest = intl[len(cc) + 2:]
        value = U.choice([intl, phonenumbers.format_number(num, PhoneNumberFormat.E164), "+" + cc + "-" + rest.replace(" ", "-"),
                          "00" + cc + " " + rest, "(+" + cc + ") " + rest, "+" + cc + "." + rest.replace(" ", ".")])
        ctx = U.choice(S3_BARE + S3_NEAR + ["tel:{X}", "Tel.{X}", "mob={X}", "手机-{X}", "ph.{X}"])
        add(ctx.replace("{X}", value), value, "s3/short-intl")
    # Extensions glued with ",ext=" / ";ext=" / ",x".
    for _ in range(120):
        region = U.choice(REGIONS + EXTRA_REGIONS)
        num = s3_number(region, (PhoneNumberType.FIXED_LINE,))
        value = U.choice([phonenumbers.format_number(num, PhoneNumberFormat.INTERNATIONAL),
                          phonenumbers.format_number(num, PhoneNumberFormat.E164)])
        value += U.choice([",ext=", ";ext=", ",ext.", ",x", ", ext "]) + str(U.randint(1, 99999))
        add(U.choice(S3_BARE + S3_NEAR + ["tel{X}", "Phone:{X}"]).replace("{X}", value), value, "s3/ext-comma")
    # Phone verbs of more languages, weak labels with a copula, 7-digit numbers near a phone word.
    for _ in range(300):
        region = U.choice(REGIONS + EXTRA_REGIONS + ["BO", "SG", "HK", "IS", "QA", "MO", "SC", "LI", "CR", "PA"])
        num = s3_number(region)
        nat = phonenumbers.format_number(num, PhoneNumberFormat.NATIONAL)
        digits_ = "".join(c for c in nat if c.isdigit())
        if len(digits_) < 7:
            continue
        dotted = nat.replace(" ", ".").replace("-", ".") if "(" not in nat else nat
        value = U.choice([nat, digits_, dotted])
        ctx = U.choice(S3_VERBS + S3_WEAK + S3_NEAR)
        add(ctx.replace("{X}", value), value, "s3/words")
    # "+CC (0)…" where the plan has no trunk prefix, and nested brackets.
    for _ in range(100):
        num = s3_number(U.choice(NO_TRUNK_REGIONS + ["DE", "GB", "CH", "AT", "NL"]))
        intl = phonenumbers.format_number(num, PhoneNumberFormat.INTERNATIONAL)
        cc = str(num.country_code)
        value = "+" + cc + " (0)" + intl[len(cc) + 2:]
        text = U.choice(["({X})", "{X}", "Tel. {X}", "ok ({X}) thx"]).replace("{X}", value)
        add(text, value, "s3/paren-zero")
    return lines


def s3_negative_lines():
    d = lambda n: digits(n)
    gens = [
        # Tracking numbers whose last group is shorter.
        lambda: S3_pick(["USPS ", "tracking ", "", "see "]) + " ".join([d(4) for _ in range(5)] + [d(2)]),
        lambda: " ".join([d(3) for _ in range(U.randint(5, 7))] + [d(U.randint(1, 2))]),
        # Four-part versions after a product name, sections.
        lambda: S3_pick(["Chrome ", "Edge ", "Chromium ", "Brave "]) + f"{U.randint(100, 131)}.0.{U.randint(1000, 6999)}.{U.randint(10, 250)}",
        lambda: S3_pick(["look at section ", "see § ", "chapter ", "Abschnitt ", "clause "]) + ".".join(str(U.randint(1, 9)) for _ in range(4)),
        # Lists of small numbers.
        lambda: " ".join(str(x) for x in sorted(U.sample(range(1, 60), U.randint(5, 8)))),
        lambda: " ".join(str(10 * i) for i in range(1, U.randint(6, 10))),
        # Thousands with dots, three groups.
        lambda: S3_pick(["it was ", "", "see ", "total "]) + f"{U.randint(100, 999)}.{d(3)}.{d(3)}" + S3_pick(["", " lol", " views"]),
        # Short '+' numbers that are no numbering plan's.
        lambda: "+" + S3_pick(["1", "7", "44", "49", "33"]) + "0" * U.randint(4, 7) + S3_pick([" gold", " XP", " points", ""]),
        lambda: S3_pick(["use [at] and [dot] to hide emails", "write [at] or [dot] to be safe", "click (at) the (dot) in the corner"]),
        lambda: f"called {d(2)} {d(3)} {d(3)} times",
    ]
    return [{"text": U.choice(gens)(), "spans": [], "lang": "mixed", "case": "negative3"} for _ in range(500)]


def S3_pick(seq):
    return U.choice(seq)


def main():
    lines = pii_lines() + negative_lines()
    R.shuffle(lines)
    extra = s2_phone_lines() + s2_email_lines() + s2_obf_lines() + s2_ip_lines() + s2_negative_lines()
    S.shuffle(extra)
    third = s3_phone_lines() + s3_negative_lines()
    U.shuffle(third)
    out = sys.stdout
    for l in lines + extra + third:
        out.write(json.dumps(l, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
