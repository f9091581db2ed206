"""``trellis i18n``: extract, init, update and compile the message catalogs.

```text
trellis --app myproject:app i18n extract           # ./locale/messages.pot from .py and templates
trellis --app myproject:app i18n init fr           # ./locale/fr/LC_MESSAGES/messages.po
trellis --app myproject:app i18n update            # merge new messages into every .po
trellis --app myproject:app i18n compile           # .po -> .mo (what the app loads)
```

No Babel configuration file: the extraction is set up here. Python files (``**.py``) use
Babel's Python extractor with the keywords of ``trellis.i18n`` (``_``, ``gettext``,
``ngettext``, ``pgettext``, ``npgettext``, ``lazy_gettext`` ...); templates (``.html``,
``.htm``, ``.xml``, ``.jinja``, ``.jinja2``, ``.j2``, and ``.txt`` inside a ``templates``
folder) use Jinja2's extractor, with the Jinja2 extensions of the application's templates so
that their tags parse. Folders starting with ``.`` or ``_``, virtual environments,
``node_modules``, ``build``, ``dist`` and the catalog folder itself are skipped.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from babel.messages.catalog import Catalog

    from trellis.contrib.i18n.plugin import I18n

__all__ = ["KEYWORDS", "compile_catalogs", "extract_messages", "i18n_command"]

#: The gettext functions whose literal arguments are collected (Babel's keyword spec).
KEYWORDS: dict[str, Any] = {
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "pgettext": ((1, "c"), 2),
    "npgettext": ((1, "c"), 2, 3),
    "N_": None,
    "lazy_gettext": None,
    "lazy_ngettext": (1, 2),
    "lazy_pgettext": ((1, "c"), 2),
    "_l": None,
}

_TEMPLATE_SUFFIXES = {".html", ".htm", ".xml", ".jinja", ".jinja2", ".j2"}
_SKIPPED = {"venv", "env", "node_modules", "build", "dist", "site-packages", "htmlcov"}
_COMMENT_TAGS = ("TRANSLATORS:", "Translators:")


def _method(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix == ".py":
        return "python"
    if suffix in _TEMPLATE_SUFFIXES or (suffix == ".txt" and "templates" in path.parts):
        return "jinja2.ext:babel_extract"
    return None


def _files(source: Path, skip: Sequence[Path]) -> Iterator[Path]:
    if source.is_file():
        yield source
        return
    for dirpath, dirnames, filenames in os.walk(source):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not d.startswith((".", "_")) and d not in _SKIPPED and (here / d) not in skip
        )
        for name in sorted(filenames):
            yield here / name


def _jinja_options(i18n: I18n | None) -> dict[str, str]:
    """The options of Jinja2's extractor: the app's extensions and syntax settings."""
    options = {"encoding": "utf-8", "newstyle_gettext": "true", "silent": "false"}
    app = i18n.app if i18n is not None else None
    templates = getattr(app, "templates", None)
    if app is not None and templates is None:
        try:
            app.build()  # the templates (and their extensions) are set up with the app
        except Exception:  # an app that cannot build still gets its messages extracted
            pass
        templates = getattr(app, "templates", None)
    if templates is not None:
        env = templates.env
        names = [
            f"{type(ext).__module__}:{type(ext).__qualname__}"
            for ext in env.extensions.values()
            if type(ext).__module__ != "jinja2.ext"
            or type(ext).__name__ != "InternationalizationExtension"
        ]
        if names:
            options["extensions"] = ",".join(names)
        for name in ("trim_blocks", "lstrip_blocks"):
            if getattr(env, name):
                options[name] = "true"
    return options


def extract_messages(
    sources: Sequence[str | os.PathLike[str]],
    *,
    i18n: I18n | None = None,
    skip: Sequence[str | os.PathLike[str]] = (),
    project: str | None = None,
    keywords: dict[str, Any] | None = None,
    warn: Any = None,
) -> Catalog:
    """Collect the translatable messages of ``sources`` (folders or files) into a catalog.

    Args:
        sources: Where to look.
        i18n: The plugin, whose application's Jinja2 extensions the templates need.
        skip: Folders not to enter (the catalog folder).
        project: The project name for the catalog header.
        keywords: More gettext-like functions (Babel's keyword specs), besides ``KEYWORDS``.
        warn: Called with a message for each file that could not be read.
    """
    from babel.messages.catalog import Catalog
    from babel.messages.extract import extract_from_file

    catalog = Catalog(project=project, charset="utf-8", fuzzy=False)
    all_keywords = {**KEYWORDS, **(keywords or {})}
    jinja_options = _jinja_options(i18n)
    skipped = [Path(os.path.abspath(s)) for s in skip]
    cwd = Path.cwd()
    for source in sources:
        for path in _files(Path(os.path.abspath(source)), skipped):
            method = _method(path)
            if method is None:
                continue
            options = jinja_options if method != "python" else {"encoding": "utf-8"}
            try:
                results = extract_from_file(
                    method,
                    path,
                    keywords=all_keywords,
                    comment_tags=_COMMENT_TAGS,
                    options=options,
                    strip_comment_tags=True,
                )
            except Exception as exc:  # a template with a syntax error, a bad encoding
                if warn is not None:
                    warn(f"skipped {path}: {type(exc).__name__}: {exc}")
                continue
            try:
                where = str(path.relative_to(cwd))
            except ValueError:
                where = str(path)
            for lineno, message, comments, context in results:
                catalog.add(
                    message,
                    None,
                    [(where.replace(os.sep, "/"), lineno)],
                    auto_comments=comments,
                    context=context,
                )
    return catalog


def _write_po(path: Path, catalog: Catalog) -> None:
    from babel.messages.pofile import write_po

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fp:
        write_po(fp, catalog, width=76)
    os.replace(tmp, path)


def _read_po(path: Path, locale: str | None = None, domain: str | None = None) -> Catalog:
    from babel.messages.pofile import read_po

    with open(path, "rb") as fp:
        return read_po(fp, locale=locale, domain=domain)


def _po_files(directory: Path, domain: str, locales: Sequence[str]) -> list[tuple[str, Path]]:
    if locales:
        return [(loc, directory / loc / "LC_MESSAGES" / f"{domain}.po") for loc in locales]
    if not directory.is_dir():
        return []
    return [
        (child.name, child / "LC_MESSAGES" / f"{domain}.po")
        for child in sorted(directory.iterdir())
        if (child / "LC_MESSAGES" / f"{domain}.po").is_file()
    ]


def compile_catalogs(
    directory: str | os.PathLike[str],
    domain: str = "messages",
    locales: Sequence[str] = (),
    *,
    use_fuzzy: bool = False,
) -> list[tuple[Path, int, int, list[str]]]:
    """Compile ``<directory>/<locale>/LC_MESSAGES/<domain>.po`` files into ``.mo`` files.

    Returns:
        For each catalog: its ``.po`` path, the translated and total message counts, and the
        problems found (a catalog with problems is not compiled).
    """
    from babel.messages.mofile import write_mo

    done = []
    for locale, po in _po_files(Path(directory), domain, locales):
        if not po.is_file():
            raise click.ClickException(f"no catalog {po}: run `trellis i18n init {locale}`")
        catalog = _read_po(po, locale, domain)
        problems = [
            f"{po}:{message.lineno}: {error}"
            for message, errors in catalog.check()
            for error in errors
        ]
        messages = [m for m in catalog if m.id]
        translated = sum(
            1
            for m in messages
            if (all(m.string) if isinstance(m.string, tuple) else m.string)
            and (use_fuzzy or not m.fuzzy)
        )
        if not problems:
            mo = po.with_suffix(".mo")
            tmp = mo.with_name(mo.name + ".tmp")
            with open(tmp, "wb") as fp:
                write_mo(fp, catalog, use_fuzzy=use_fuzzy)
            os.replace(tmp, mo)
        done.append((po, translated, len(messages), problems))
    return done


def i18n_command(i18n: I18n) -> click.Group:
    """The ``trellis i18n`` group, bound to the installed plugin."""
    default_directory = i18n.directories[0] if i18n.directories else Path("locale")

    directory_option = click.option(
        "--directory",
        "-d",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help=f"The catalog folder (default: {os.path.relpath(default_directory)}).",
    )

    template_option = click.option(
        "--input",
        "-i",
        "template",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="The template (default: <directory>/<domain>.pot).",
    )

    locales_option = click.option(
        "--locale",
        "-l",
        "locales",
        multiple=True,
        help="Only this locale (repeatable; default: every catalog).",
    )

    def _dir(value: Path | None) -> Path:
        return Path(os.path.abspath(value)) if value is not None else default_directory

    def _template(directory: Path, value: Path | None) -> Path:
        return value if value is not None else directory / f"{i18n.domain}.pot"

    def _existing_template(directory: Path, value: Path | None) -> Path:
        source = _template(directory, value)
        if not source.is_file():
            raise click.ClickException(f"no template {source}: run `trellis i18n extract` first")
        return source

    @click.group(name="i18n")
    def group() -> None:
        """Translations: extract messages, start, update and compile catalogs."""

    @group.command()
    @click.option(
        "--source",
        "-s",
        "sources",
        multiple=True,
        type=click.Path(exists=True, path_type=Path),
        help="A folder or file to search (repeatable; default: the current folder).",
    )
    @click.option(
        "--output",
        "-o",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="The template to write (default: <directory>/<domain>.pot).",
    )
    @click.option(
        "--project", default=None, help="The project name for the header (default: the folder's)."
    )
    @directory_option
    def extract(
        sources: tuple[Path, ...],
        output: Path | None,
        project: str | None,
        directory: Path | None,
    ) -> None:
        """Collect the translatable messages into the .pot template."""
        folder = _dir(directory)
        target = _template(folder, output)
        catalog = extract_messages(
            sources or (Path.cwd(),),
            i18n=i18n,
            skip=[folder],
            project=project or Path.cwd().name,
            warn=lambda text: click.echo(f"warning: {text}", err=True),
        )
        _write_po(target, catalog)
        click.echo(f"extracted {len(catalog)} messages to {os.path.relpath(target)}")

    @group.command()
    @click.argument("locale")
    @template_option
    @click.option("--force", is_flag=True, help="Overwrite an existing catalog.")
    @directory_option
    def init(locale: str, template: Path | None, force: bool, directory: Path | None) -> None:
        """Start the catalog of LOCALE from the template."""
        from babel import Locale, UnknownLocaleError

        folder = _dir(directory)
        source = _existing_template(folder, template)
        try:
            parsed = Locale.parse(locale.replace("-", "_"))
        except (UnknownLocaleError, ValueError):
            raise click.ClickException(f"unknown locale {locale!r}") from None
        target = folder / str(parsed) / "LC_MESSAGES" / f"{i18n.domain}.po"
        if target.exists() and not force:
            raise click.ClickException(
                f"{target} exists: `trellis i18n update` merges new messages into it"
                " (or pass --force to start over)"
            )
        catalog = _read_po(source, str(parsed), i18n.domain)
        catalog.locale = parsed
        catalog.revision_date = _dt.datetime.now(_dt.UTC)
        catalog.fuzzy = False
        _write_po(target, catalog)
        click.echo(f"created {os.path.relpath(target)}")

    @group.command()
    @template_option
    @locales_option
    @click.option(
        "--no-fuzzy-matching",
        is_flag=True,
        help="Do not guess translations of new messages from similar old ones.",
    )
    @directory_option
    def update(
        template: Path | None,
        locales: tuple[str, ...],
        no_fuzzy_matching: bool,
        directory: Path | None,
    ) -> None:
        """Merge the template's new and changed messages into the catalogs."""
        folder = _dir(directory)
        source = _existing_template(folder, template)
        pot = _read_po(source)
        targets = _po_files(folder, i18n.domain, locales)
        if not targets:
            raise click.ClickException(f"no catalog in {folder}: run `trellis i18n init LOCALE`")
        for locale, po in targets:
            if not po.is_file():
                raise click.ClickException(f"no catalog {po}: run `trellis i18n init {locale}`")
            catalog = _read_po(po, locale, i18n.domain)
            catalog.update(pot, no_fuzzy_matching=no_fuzzy_matching)
            _write_po(po, catalog)
            click.echo(f"updated {os.path.relpath(po)}")

    @group.command(name="compile")
    @locales_option
    @click.option("--use-fuzzy", is_flag=True, help="Include translations marked fuzzy.")
    @directory_option
    def compile_(locales: tuple[str, ...], use_fuzzy: bool, directory: Path | None) -> None:
        """Compile the catalogs (.po) into what the application loads (.mo)."""
        folder = _dir(directory)
        results = compile_catalogs(folder, i18n.domain, locales, use_fuzzy=use_fuzzy)
        if not results:
            raise click.ClickException(f"no catalog in {folder}: run `trellis i18n init LOCALE`")
        failed = False
        for po, translated, total, problems in results:
            for problem in problems:
                click.echo(f"error: {problem}", err=True)
            if problems:
                failed = True
                click.echo(f"not compiled: {os.path.relpath(po)}", err=True)
            else:
                mo = os.path.relpath(po.with_suffix(".mo"))
                click.echo(f"compiled {mo} ({translated} of {total} messages translated)")
        if failed:
            raise click.ClickException("some catalogs have errors (see above)")

    return group
