#!/usr/bin/env python3
"""vCards from and for another producer: python3-vobject (Debian's vCard library).

  vcards_vobject.py make OUT.vcf   write the test's address book with vobject (vCard 3.0)
  vcards_vobject.py read IN.vcf    parse IN.vcf with vobject and print its cards as JSON
                                   (fn, tel list, email, note, url, categories)

Used by tests/interop/tests/vcard_vobject.rs: the softphone imports what vobject writes
and vobject reads what the softphone exports.
"""
import json
import sys

import vobject


def make(path):
    cards = []

    c = vobject.vCard()
    c.add("n").value = vobject.vcard.Name(family="Ångström", given="Zoë", suffix="PhD")
    c.add("fn").value = "Zoë Ångström, PhD"
    t = c.add("tel")
    t.value = "+36 1 234 5678"
    t.type_param = "CELL"
    t = c.add("tel")
    t.value = "1002"
    t.type_param = "WORK"
    c.add("email").value = "zoe@example.org"
    c.add("adr").value = vobject.vcard.Address(
        street="Fő utca 1", city="Budapest", code="1011", country="Hungary"
    )
    # Long enough that vobject folds it; a semicolon and a comma that it escapes.
    c.add("note").value = (
        "Prefers calls in the morning; speaks Hungarian, English and Swedish. "
        "Ask for the project line first."
    )
    c.add("url").value = "https://example.org/zoe"
    c.add("categories").value = ["Colleagues", "Favorites"]
    cards.append(c)

    c = vobject.vCard()
    c.add("n").value = vobject.vcard.Name(family="Okafor", given="Chidi")
    c.add("fn").value = "Chidi Okafor"
    t = c.add("tel")
    t.value = "1003"
    t.type_param = "HOME"
    cards.append(c)

    c = vobject.vCard()
    c.add("n").value = vobject.vcard.Name(family="", given="")
    c.add("fn").value = "Reception <Desk> & \"Lobby\""
    c.add("org").value = ["Example Hotel", "Front office"]
    t = c.add("tel")
    t.value = "+44 20 7946 0000"
    cards.append(c)

    with open(path, "w", encoding="utf-8", newline="") as f:
        for card in cards:
            f.write(card.serialize())


def read(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    out = []
    for card in vobject.readComponents(text):
        def values(name):
            return [p.value for p in card.contents.get(name, [])]

        fn = values("fn")
        cats = []
        for v in values("categories"):
            cats.extend(v if isinstance(v, list) else [v])
        out.append(
            {
                "fn": fn[0] if fn else None,
                "tel": values("tel"),
                "email": (values("email") or [None])[0],
                "note": (values("note") or [None])[0],
                "url": (values("url") or [None])[0],
                "categories": cats,
            }
        )
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("make", "read"):
        sys.exit(__doc__)
    (make if sys.argv[1] == "make" else read)(sys.argv[2])
