"""The full email a recipient would see, rendered with Jinja2 for reviewers: subject,
preheader, the body blocks, the recommended products, and the footer with the unsubscribe
link and the postal address. `footer_problems` parses a rendered email (html.parser) and
says which of the footer, unsubscribe link and postal address is missing: a guardrail."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Sequence

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES_DIR = Path(__file__).parent / "templates"
EMAIL_TEMPLATE = "email.html.j2"
# What the ESP replaces with each recipient's own unsubscribe link when it sends.
UNSUBSCRIBE_URL_PLACEHOLDER = "{{unsubscribe_url}}"


@dataclass(frozen=True)
class Product:
    product_id: str
    label: str


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_email(
    *,
    variant_id: str,
    subject: str,
    preheader: str,
    body_block_ids: Sequence[str],
    email_blocks,
    products: Sequence[Product] = (),
    provenance: str = "",
) -> str:
    """The email as HTML. Body blocks come from the approved `email_blocks` by id (an unknown
    id is a ValueError naming it); every text is escaped."""
    by_id = email_blocks.body_blocks_by_id
    unknown = [block_id for block_id in body_block_ids if block_id not in by_id]
    if unknown:
        raise ValueError(f"body block ids {unknown} are not in the approved email blocks {email_blocks.blocks_version}")
    return _environment().get_template(EMAIL_TEMPLATE).render(
        variant_id=variant_id,
        subject=subject,
        preheader=preheader,
        sender_name=email_blocks.sender_name,
        body_blocks=[by_id[block_id] for block_id in body_block_ids],
        products=list(products),
        footer_id=email_blocks.footer.id,
        footer_text=email_blocks.footer.text,
        unsubscribe_id=email_blocks.unsubscribe.id,
        unsubscribe_text=email_blocks.unsubscribe.text,
        unsubscribe_url=UNSUBSCRIBE_URL_PLACEHOLDER,
        postal_address=email_blocks.postal_address,
        provenance=provenance,
    )


@dataclass
class EmailStructure:
    """What a parse of a rendered email found."""

    title: str = ""
    preheader: str = ""
    body_block_ids: list[str] = field(default_factory=list)
    product_ids: list[str] = field(default_factory=list)
    footer_ids: list[str] = field(default_factory=list)
    footer_text: str = ""
    unsubscribe_links: list[tuple[str, str]] = field(default_factory=list)  # (href, text) inside the footer
    address_text: str = ""


class _EmailParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found = EmailStructure()
        self._stack: list[tuple[str, dict]] = []
        self._link: tuple[str, list[str]] | None = None

    def _inside(self, tag: str) -> bool:
        return any(name == tag for name, _ in self._stack)

    def handle_starttag(self, tag, attrs):
        attributes = {name: value or "" for name, value in attrs}
        classes = attributes.get("class", "").split()
        if tag == "footer":
            self.found.footer_ids.append(attributes.get("id", ""))
        if "body-block" in classes and self._inside("main"):
            self.found.body_block_ids.append(attributes.get("data-block-id", ""))
        if "product" in classes:
            self.found.product_ids.append(attributes.get("data-product-id", ""))
        if tag == "a" and self._inside("footer"):
            self._link = (attributes.get("href", ""), [])
        if tag not in ("meta", "br", "img", "link", "input", "hr"):
            self._stack.append((tag, attributes))

    def handle_endtag(self, tag):
        if tag == "a" and self._link is not None:
            self.found.unsubscribe_links.append((self._link[0], "".join(self._link[1]).strip()))
            self._link = None
        for position in range(len(self._stack) - 1, -1, -1):
            if self._stack[position][0] == tag:
                del self._stack[position:]
                break

    def handle_data(self, data):
        if self._link is not None:
            self._link[1].append(data)
        if not self._stack:
            return
        tag, attributes = self._stack[-1]
        if tag == "title":
            self.found.title += data
        if "preheader" in attributes.get("class", "").split():
            self.found.preheader += data
        if self._inside("footer"):
            self.found.footer_text += data
            if self._inside("address"):
                self.found.address_text += data


def parse_email(html: str) -> EmailStructure:
    parser = _EmailParser()
    parser.feed(html)
    parser.close()
    return parser.found


def footer_problems(html: str, email_blocks) -> list[str]:
    """Which of `missing_footer`, `missing_unsubscribe`, `missing_postal_address` a rendered
    email has: the approved footer element with its text, an unsubscribe link inside it, and
    the postal address in it."""
    found = parse_email(html)
    problems = []
    if email_blocks.footer.id not in found.footer_ids or email_blocks.footer.text not in " ".join(found.footer_text.split()):
        problems.append("missing_footer")
    if not any(href and text == email_blocks.unsubscribe.text for href, text in found.unsubscribe_links):
        problems.append("missing_unsubscribe")
    if email_blocks.postal_address not in " ".join(found.address_text.split()):
        problems.append("missing_postal_address")
    return problems


def write_previews(variants, segments, email_blocks, folder: Path, *, day: str, states=("approved", "proposed")) -> list[Path]:
    """Render every passing variant in one of `states` (column `approval_state`) as a full email
    for reviewers, one HTML file per variant under `folder` (a variant used by several segments
    is shown with the first segment's products), plus `index.html` listing them. `segments`
    holds (top_category, lifecycle_stage, top_products). Returns the files written, index last."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    products = {(c, s): ids for c, s, ids in segments[["top_category", "lifecycle_stage", "top_products"]].itertuples(
        index=False, name=None)}
    shown = variants[variants["guardrail_passed"] & variants["approval_state"].isin(states)]
    shown = shown.sort_values(["variant_id", "top_category", "lifecycle_stage"]).drop_duplicates("variant_id")
    written, rows = [], []
    for variant in shown.itertuples(index=False):
        prompt = f"{variant.prompt_name} v{int(variant.prompt_version)}" if isinstance(variant.prompt_name, str) else "none"
        provenance = f"{variant.provider}" + (f" · {variant.model}" if isinstance(variant.model, str) else "") + \
            f" · prompt {prompt} · {variant.approval_state}"
        path = folder / f"{variant.variant_id}.html"
        path.write_text(render_email(
            variant_id=variant.variant_id, subject=variant.subject_line, preheader=variant.preheader or "",
            body_block_ids=json.loads(variant.body_block_ids), email_blocks=email_blocks, provenance=provenance,
            products=[Product(pid, f"Product {pid}") for pid in products.get((variant.top_category, variant.lifecycle_stage), [])],
        ), encoding="utf-8")
        written.append(path)
        rows.append({"variant_id": variant.variant_id, "state": variant.approval_state, "file": path.name,
                     "segment": f"{variant.top_category} / {variant.lifecycle_stage}", "subject": variant.subject_line,
                     "provider": variant.provider, "prompt": prompt})
    index = folder / "index.html"
    index.write_text(_environment().get_template("previews_index.html.j2").render(day=day, rows=rows), encoding="utf-8")
    return [*written, index]
