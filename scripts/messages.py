"""Update the message catalogue: every ``msg("…")`` template in gateway/ and every error
title of gateway/errors.py, merged into gateway/locale/<locale>/LC_MESSAGES/gateway.po
(new messages get an empty translation, to be filled in; messages no longer used are
marked obsolete). Run after adding or changing a message; tests/unit/test_i18n.py fails
until every message has a translation.

    .venv/bin/python scripts/messages.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.i18n import DOMAIN, Language  # noqa: E402
from tests.unit.i18n_support import catalogue_messages  # noqa: E402


def main() -> None:
    template = Catalog(domain=DOMAIN, project="gateway", charset="utf-8")
    for text, locations in catalogue_messages().items():
        template.add(text, locations=locations)
    for language in Language:
        if language is Language.EN:
            continue
        path = ROOT / "gateway" / "locale" / language.locale / "LC_MESSAGES" / f"{DOMAIN}.po"
        if path.exists():
            with path.open("rb") as po:
                catalog = read_po(po, locale=language.locale, domain=DOMAIN)
        else:
            catalog = Catalog(locale=language.locale, domain=DOMAIN, project="gateway")
        created = catalog.creation_date
        catalog.update(template, no_fuzzy_matching=True)
        catalog.creation_date = created  # keep the file unchanged when nothing changed
        catalog.fuzzy = False  # the header: the catalogue is in use as it is
        catalog.project = "gateway"
        catalog.version = "1"
        catalog.msgid_bugs_address = ""
        catalog.last_translator = "gateway"
        catalog.language_team = "gateway"
        with path.open("wb") as po:
            # No line numbers: they would change the file whenever code moves.
            write_po(po, catalog, width=100, sort_output=True, include_lineno=False)
        print(f"{path.relative_to(ROOT)}: {len(catalog)} messages")


if __name__ == "__main__":
    main()
