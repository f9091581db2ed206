"""The add and edit pages: ``trellis.contrib.forms.ModelForm`` over the registered model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError

from trellis.contrib.admin import _log
from trellis.contrib.admin._display import format_value, raw_value
from trellis.contrib.admin.options import humanize
from trellis.contrib.db.database import conflict_detail
from trellis.contrib.forms.model_form import ModelForm
from trellis.http.response import RedirectResponse
from trellis.i18n import gettext
from trellis.sessions import flash

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from trellis.contrib.admin.options import ModelAdmin
    from trellis.http.request import Request
    from trellis.http.response import Response


def form_fields(ma: ModelAdmin) -> list[str]:
    """The fields of the add and edit forms (``ModelAdmin.editable_fields``)."""
    return ma.editable_fields()


def _given(ma: ModelAdmin, data: dict[str, Any]) -> list[str]:
    """The fields of a new object given a value (not empty, not the column's default)."""
    names = []
    for name in form_fields(ma):
        value = data.get(name)
        if value is None or value == "" or value == []:
            continue
        column = ma.columns.get(name)
        default = getattr(column, "default", None)
        if default is not None and getattr(default, "is_scalar", False) and default.arg == value:
            continue
        names.append(name)
    return names


def form_class(ma: ModelAdmin) -> type[ModelForm]:
    """The ``ModelForm`` class of ``ma`` (made once)."""
    found: type[ModelForm] | None = ma.__dict__.get("_form_class")
    if found is None:
        found = ModelForm.for_model(
            ma.model, fields=form_fields(ma), name=f"{ma.model.__name__}AdminForm"
        )
        ma.__dict__["_form_class"] = found
    return found


async def form_page(
    request: Request,
    db: AsyncSession,
    ma: ModelAdmin,
    obj: Any,
    urls: dict[str, Any],
) -> Response:
    """The add page (``obj`` is ``None``) or the edit page, and their submissions."""
    from trellis.contrib.admin.pages import _render

    cls = form_class(ma)
    created = obj is None
    status = 200
    if request.method == "POST":
        form = await cls.from_request(request, db=db, instance=obj)
        if form.is_valid:
            before = _log.snapshot(ma, obj) if obj is not None else {}
            try:
                async with db.begin_nested():
                    saved = await form.save(db, instance=obj)
                    await ma.save_model(request, db, saved, created=created)
            except IntegrityError as exc:
                form.add_error(None, conflict_detail(exc))
                status = 409
                if obj is not None:
                    await db.refresh(obj)  # the savepoint's rollback expired it
            else:
                text = ma.object_repr(saved)
                if created:
                    changed = _given(ma, form.data)
                    _log.log(db, request, ma, [(saved, text)], "add", changed=changed)
                    message = gettext(
                        '%(label)s "%(name)s" was added.', label=ma.verbose_name, name=text
                    )
                else:
                    changed = _log.changed_fields(before, _log.snapshot(ma, saved))
                    if changed:
                        _log.log(db, request, ma, [(saved, text)], "change", changed=changed)
                    message = gettext(
                        '%(label)s "%(name)s" was changed.', label=ma.verbose_name, name=text
                    )
                flash(request, message, "success")
                pk = ma.pk_text(saved)
                form_data = await request.form()
                if "_continue" in form_data:
                    return RedirectResponse(urls["edit"](pk), 303)
                if "_addanother" in form_data:
                    return RedirectResponse(urls["add"], 303)
                return RedirectResponse(urls["detail"](pk), 303)
        else:
            status = 422
    else:
        form = cls(instance=obj, db=db, request=request)
        await form.load()
    readonly = []
    if obj is not None:
        readonly = [
            (humanize(name), format_value(request, ma, raw_value(ma, obj, name)))
            for name in ma.readonly_fields
        ]
    if created:
        title = gettext("Add %(label)s", label=ma.verbose_name)
    else:
        title = gettext("Change %(name)s", name=ma.object_repr(obj))
    return await _render(
        request,
        "form.html",
        status=status,
        title=title,
        current=ma.url_slug,
        ma=ma,
        urls=urls,
        form=form,
        obj=obj,
        pk=ma.pk_text(obj) if obj is not None else None,
        readonly=readonly,
        created=created,
        can_delete=obj is not None and await ma.has_delete_permission(request, obj),
    )
