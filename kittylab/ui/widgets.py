"""The workbench's forms and dashboard (ipywidgets 8): fill in, click, see the certificate's card.

Each form only calls :class:`~kittylab.Workspace`; mistakes show as one line beside the field
(while typing) or under the form (when the core refuses), never as a traceback. Every widget
carries a stable CSS class ``kl-...`` (``kl-subject-form``, ``kl-field-c``, ``kl-error-c``,
``kl-issue-button``, ``kl-card``, ``kl-dashboard``, ``kl-revoke-button``, ...) so that tests and
workshop notebooks can find it. After any action every open form and dashboard of the same
workspace refreshes, so the dashboard lists what a form just issued.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import weakref
from pathlib import Path
from typing import Callable, Iterable

import ipywidgets as widgets

from ..errors import KittylabError
from ..pki.ca import CA_DAYS, LEAF_DAYS, check_days
from ..pki.crl import REASONS
from ..pki.facts import Record, when
from ..pki.keys import KEY_KINDS
from ..pki.names import Subject, check_dns_name, check_email, check_ip
from ..render import theme
from ..render.display import Card, issued_card, record_card, status_badge
from ..render.progress import progress_bar
from ..render.templates import macro
from ..render.trust import trust_diagram
from ..workspace.workspace import Issued, Workspace, check_name

#: "RSA 2048", "ECDSA P-256", ...: the names before the trade-off in KEY_KINDS.
KEY_LABELS = {kind: tradeoff.split(":")[0] for kind, tradeoff in KEY_KINDS.items()}
SUBJECT_FIELDS = (
    ("cn", "Common name (CN)"),
    ("o", "Organization (O)"),
    ("ou", "Unit (OU)"),
    ("c", "Country (C)"),
    ("st", "State (ST)"),
    ("l", "Locality (L)"),
    ("email", "Email (in the subject)"),
)
#: The Email field of a form whose emails go into the subject alternative names (a client's),
#: the one source of the addresses its request and certificate carry.
EMAIL_SAN_LABEL = "Email (alternative names)"
P12_FLAVOURS = {
    "modern": "modern: AES-256 and PBKDF2, for current browsers, OpenSSL 3 and Java 11+",
    "legacy": "legacy: 3DES and SHA-1, for Apple keychains, old Windows and Android",
}
_STYLE = {"description_width": "150px"}
_WIDTH = "420px"
_AUTO = {"width": "auto"}  # a button as wide as its label ("Publish CRL" was cut)
#: Forms and dashboards that are open, refreshed after any action on their workspace.
_LIVE: "weakref.WeakSet[_Refreshable]" = weakref.WeakSet()


def _classed(widget: widgets.Widget, *classes: str) -> widgets.Widget:
    for name in classes:
        widget.add_class(name)
    return widget


def set_tone(label: widgets.Widget, *, error: bool) -> None:
    """Show a message in the theme's error or success colour (see :data:`theme.TONE_STYLE`)."""
    label.remove_class("kl-tone-ok" if error else "kl-tone-error")
    label.add_class("kl-tone-error" if error else "kl-tone-ok")


def split_list(text: str) -> list[str]:
    """``"a, b c"`` -> ``["a", "b", "c"]``: several names in one text field."""
    return [part for part in re.split(r"[,\s]+", text.strip()) if part]


def download_link(path: Path, *, mime: str = "application/octet-stream") -> str:
    """An HTML link that downloads the file itself (a data: URI), wherever the notebook is served."""
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return macro("widgets.html", "download_link", name=Path(path).name, mime=mime, data=data)


class _Refreshable:
    """Something that shows a workspace and must redraw after any action on it."""

    workspace: Workspace

    def refresh(self) -> None:  # pragma: no cover - each subclass draws itself
        raise NotImplementedError

    def _watch(self) -> None:
        _LIVE.add(self)

    def _after_action(self) -> None:
        home = self.workspace.home.resolve()
        for other in list(_LIVE):
            if getattr(other, "comm", None) is None or other.workspace.closed:
                _LIVE.discard(other)
            elif other.workspace.home.resolve() == home:
                try:
                    other.refresh()
                except KittylabError:  # its CA was removed
                    _LIVE.discard(other)


class Field(widgets.HBox):
    """An input with its validation message beside it, updated as the user types.

    ``check`` raises :class:`KittylabError` for a bad value; its message is shown in a small
    label (``kl-error-NAME``) next to the input (``kl-field-NAME``).
    """

    def __init__(self, name: str, control: widgets.ValueWidget, check: Callable[[object], object]) -> None:
        self.name = name
        self.control = _classed(control, f"kl-field-{name}", "kl-field")
        self.error = _classed(widgets.Label(value=""), f"kl-error-{name}", "kl-error", "kl-tone-error")
        self._check = check
        control.observe(self._show_error, names="value")
        super().__init__([self.control, self.error])

    @property
    def value(self):
        value = self.control.value
        return value.strip() if isinstance(value, str) else value

    @value.setter
    def value(self, value) -> None:
        self.control.value = value

    def message(self) -> str:
        """The validation message for the current value, or "" if it is fine."""
        try:
            self._check(self.value)
        except KittylabError as exc:
            return str(exc)
        return ""

    def _show_error(self, change: dict | None = None) -> None:
        self.error.value = self.message()


def _text(label: str, value: str = "", *, placeholder: str = "", password: bool = False) -> widgets.Text:
    kind = widgets.Password if password else widgets.Text
    return kind(value=value, description=label, placeholder=placeholder, style=_STYLE, layout=widgets.Layout(width=_WIDTH))


def _file_name_field(name: str, placeholder: str) -> Field:
    """The optional file name a certificate is recorded under (empty: its CN)."""
    return Field(name, _text("File name", placeholder=placeholder), lambda value: check_name(value) if value else None)


def _days_field(name: str, days: int) -> Field:
    """How many days a certificate is valid, checked as :func:`check_days` checks it."""
    control = widgets.IntText(value=days, description="Valid for (days)", style=_STYLE, layout=widgets.Layout(width=_WIDTH))
    return Field(name, control, check_days)


def _check_subject_field(name: str) -> Callable[[str], object]:
    def check(value: str) -> object:
        if name == "cn":
            return Subject(cn=value)
        return Subject(cn="x", **{name: value}) if value else None

    return check


def _check_each(check: Callable[[str], object]) -> Callable[[str], object]:
    return lambda text: [check(part) for part in split_list(text)]


class SubjectForm(widgets.VBox):
    """CN, O, OU, C, ST, L and email, each checked as it is typed (kl-subject-form).

    Given ``emails`` (a client's form), the Email field holds the addresses that go into the
    subject alternative names, several separated by commas: :attr:`emails` lists them and
    :attr:`subject` leaves them out (RFC 5280 puts email addresses in the alternative names; a
    subject's emailAddress is legacy). Without, the Email field is the subject's emailAddress.
    """

    def __init__(self, defaults: Subject | None = None, *, emails: Iterable[str] | None = None) -> None:
        self.email_in_san = emails is not None
        self.fields = {
            name: Field(name, _text(label, getattr(defaults, name, "") if defaults else ""), _check_subject_field(name))
            for name, label in SUBJECT_FIELDS
        }
        if self.email_in_san:
            self.fields["email"] = Field(
                "email",
                _text(EMAIL_SAN_LABEL, ", ".join(emails or ()), placeholder="eager-client@kitty.test (optional)"),
                _check_each(check_email),
            )
        # Shown alone too (notebook 04): it brings the message colours (a <style> applies while hidden).
        tones = widgets.HTML(value=theme.TONE_STYLE, layout=widgets.Layout(display="none"))
        super().__init__([tones, *self.fields.values()])
        self.add_class("kl-subject-form")

    @property
    def subject(self) -> Subject:
        """The subject as filled in (surrounding spaces dropped); a bad field raises KittylabError."""
        values = {name: field.value for name, field in self.fields.items()}
        if self.email_in_san:
            del values["email"]
        return Subject(**values)

    @property
    def emails(self) -> list[str]:
        """The email addresses for the alternative names (none unless the form was given ``emails``)."""
        if not self.email_in_san:
            return []
        field = self.fields["email"]
        if field.message():
            raise KittylabError(field.message())
        return split_list(field.value)

    def errors(self) -> dict[str, str]:
        return {name: message for name, field in self.fields.items() if (message := field.message())}

    def fill_defaults(self, defaults: Subject) -> None:
        """Fill the fields still empty from ``defaults`` (the CA's O, C, ST and L)."""
        for name, field in self.fields.items():
            if not field.value and getattr(defaults, name):
                field.value = getattr(defaults, name)


class KeyChoice(widgets.VBox):
    """The key type, with a line on its trade-off, and the validity in days (kl-key-choice)."""

    def __init__(self, *, key: str = "rsa2048", days: int = LEAF_DAYS) -> None:
        self.key = _classed(
            widgets.Dropdown(
                options=[(KEY_LABELS[kind], kind) for kind in KEY_KINDS],
                value=key,
                description="Key",
                style=_STYLE,
                layout=widgets.Layout(width=_WIDTH),
            ),
            "kl-field-key",
        )
        self.tradeoff = _classed(widgets.Label(value=KEY_KINDS[key]), "kl-key-tradeoff")
        self.key.observe(lambda change: setattr(self.tradeoff, "value", KEY_KINDS[change["new"]]), names="value")
        self.days = _days_field("days", days)
        super().__init__([self.key, self.tradeoff, self.days])
        self.add_class("kl-key-choice")


class _Form(widgets.VBox, _Refreshable):
    """A form with one action button, a one-line message, a progress area and the result's card."""

    title = ""
    button_label = ""
    button_class = ""

    def __init__(self, workspace: Workspace, controls: list[widgets.Widget]) -> None:
        self.workspace = workspace
        self.button = _classed(
            widgets.Button(description=self.button_label, button_style="primary", layout=widgets.Layout(width="auto")),
            "kl-issue-button",
            self.button_class,
        )
        self.button.on_click(lambda _: self.submit())
        self.message = _classed(widgets.Label(value=""), "kl-form-message")
        self.progress_area = _classed(widgets.Output(), "kl-progress-area")
        self.card = _classed(widgets.HTML(value=""), "kl-result")
        self.downloads = _classed(widgets.HTML(value=""), "kl-downloads")
        heading = widgets.HTML(value=macro("widgets.html", "heading", title=self.title))
        super().__init__(
            [heading, *controls, self.button, self.message, self.progress_area, self.card, self.downloads]
        )
        self.add_class("kl-form")
        self._watch()

    def submit(self) -> None:
        """Run the form's action: its card appears, or a one-line message says what to fix."""
        self._say("")
        self.card.value = self.downloads.value = ""
        self.progress_area.outputs = ()
        self.button.disabled = True  # a second click while this runs would issue twice
        refused = None
        try:
            # Inside a kernel the Output widget swallows what its block raises (it draws a
            # traceback instead): the refusal is caught in the block, and said in one line.
            with self.progress_area, progress_bar(None, self._progress_text()) as bar:
                try:
                    card = self.act()
                except KittylabError as exc:
                    refused = exc
                else:
                    bar.update()
        finally:
            self.button.disabled = False
        if refused is not None:
            self.progress_area.outputs = ()  # no bar stuck at 0 under the message
            self._say(str(refused), error=True)
            return
        self.card.value = card.html()
        self._after_action()

    def _say(self, text: str, *, error: bool = False) -> None:
        self.message.value = text
        set_tone(self.message, error=error)

    def _progress_text(self) -> str:
        return "working"

    def act(self) -> Card:  # pragma: no cover - each form acts
        raise NotImplementedError

    def refresh(self) -> None:
        """Take the CA's organization and place as defaults once there is a CA."""


class CreateCAForm(_Form):
    """Create the workspace's CA (kitty-ca): subject, key (RSA 4096 by default), validity, passphrase."""

    title = "Create the CA"
    button_label = "Create the CA"
    button_class = "kl-create-ca-button"

    def __init__(self, workspace: Workspace, *, subject: Subject | None = None, key: str = "rsa4096") -> None:
        self.subject = SubjectForm(subject or Subject(cn="kitty-ca"))
        self.key_choice = KeyChoice(key=key, days=CA_DAYS)
        self.passphrase = _classed(
            _text("Key passphrase", placeholder="optional: encrypts kitty-ca.key", password=True), "kl-field-passphrase"
        )
        super().__init__(workspace, [self.subject, self.key_choice, self.passphrase])
        self.add_class("kl-create-ca-form")
        self.refresh()

    def _progress_text(self) -> str:
        return f"making the CA's {KEY_LABELS[self.key_choice.key.value]} key"

    def act(self) -> Card:
        self.workspace.init_ca(
            self.subject.subject,
            key=self.key_choice.key.value,
            days=self.key_choice.days.value,
            passphrase=self.passphrase.value or None,
        )
        self._say(f"created the CA {self.workspace.ca_name}: its key is {self.workspace.path(self.workspace.ca_name, 'key')}")
        return record_card(self.workspace.find(self.workspace.ca_name))

    def refresh(self) -> None:
        if self.workspace.has_ca:
            self.button.disabled = True
            if not self.card.value:
                self._say(f"this workspace already has a CA ({self.workspace.ca_name})")
                self.card.value = record_card(self.workspace.find(self.workspace.ca_name)).html()


class _IssueForm(_Form):
    """What the server and client forms share: a file name, the subject, SANs and the key."""

    profile = ""

    def __init__(
        self, workspace: Workspace, *, name: str, key: str, extra: list[widgets.Widget],
        emails: Iterable[str] | None = None,
    ) -> None:
        self.name = _file_name_field("name", "the CN; names NAME.key, NAME.crt")
        self.subject = SubjectForm(Subject(cn=name), emails=emails)
        self.signer = _classed(
            widgets.Dropdown(options=[], description="Signed by", style=_STYLE, layout=widgets.Layout(width=_WIDTH)),
            "kl-field-ca",
        )
        self.key_choice = KeyChoice(key=key, days=LEAF_DAYS)
        super().__init__(workspace, [self.name, self.signer, self.subject, *extra, self.key_choice])
        self.add_class(f"kl-issue-{self.profile}-form")
        self.refresh()

    @property
    def button_class(self) -> str:
        return f"kl-issue-{self.profile}-button"

    @property
    def file_name(self) -> str:
        return self.name.value or self.subject.fields["cn"].value

    def _progress_text(self) -> str:
        return f"issuing {self.file_name} ({KEY_LABELS[self.key_choice.key.value]} key)"

    def _issue(self, **options) -> Issued:
        issued = self.workspace.issue(
            self.file_name,
            profile=self.profile,
            subject=self.subject.subject,
            key=self.key_choice.key.value,
            days=self.key_choice.days.value,
            ca=self.signer.value,
            **options,
        )
        self._say(f"issued {issued.name} (serial {issued.record.serial_hex}): files in {self.workspace.home}")
        self.downloads.value = download_link(issued.files["crt"], mime="application/x-pem-file")
        return issued

    def refresh(self) -> None:
        """Offer the CAs that can sign (the choice shows only when there are several), and take
        the signing CA's organization and place as defaults for fields still empty."""
        if not self.workspace.has_ca:
            self.signer.layout.display = "none"
            return
        signers = self.workspace.signing_cas()
        default = self.workspace.ca_name if self.workspace.ca_name in signers else signers[-1] if signers else None
        chosen = self.signer.value if self.signer.value in signers else default
        self.signer.options = signers
        self.signer.value = chosen
        self.signer.layout.display = None if len(signers) > 1 else "none"
        self.subject.fill_defaults(self.workspace.default_subject("x", ca=self.signer.value))


class IssueServerForm(_IssueForm):
    """picture-server's move: a server certificate for the host names and addresses it serves."""

    title = "Issue a server certificate"
    button_label = "Issue server certificate"
    profile = "server"

    def __init__(self, workspace: Workspace, *, name: str = "picture-server", key: str = "rsa2048") -> None:
        self.dns = Field(
            "dns",
            _text("DNS names", "localhost", placeholder="picture-server.example.test, localhost"),
            _check_each(lambda value: check_dns_name(value, wildcard=True)),
        )
        self.ip = Field("ip", _text("IP addresses", "127.0.0.1", placeholder="127.0.0.1, ::1"), _check_each(check_ip))
        super().__init__(workspace, name=name, key=key, extra=[self.dns, self.ip])

    def act(self) -> Card:
        return issued_card(self._issue(dns=split_list(self.dns.value), ip=split_list(self.ip.value)))


class IssueClientForm(_IssueForm):
    """eager-client's move: a client certificate and, if wanted, a p12 to import into a browser."""

    title = "Issue a client certificate"
    button_label = "Issue client certificate"
    profile = "client"

    def __init__(self, workspace: Workspace, *, name: str = "eager-client", key: str = "rsa2048") -> None:
        self.p12 = _classed(
            widgets.Checkbox(value=True, description="make a p12 for the browser", layout=widgets.Layout(width=_WIDTH)),
            "kl-field-p12",
        )
        self.p12_options = P12Options()
        super().__init__(workspace, name=name, key=key, extra=[self.p12, self.p12_options], emails=())
        #: The subject form's Email field: the addresses go into the alternative names, not the subject.
        self.emails = self.subject.fields["email"]

    def act(self) -> Card:
        issued = self._issue(
            email=self.subject.emails,
            p12=self.p12.value,
            p12_password=self.p12_options.password.value or None,
            legacy_p12=self.p12_options.legacy,
        )
        if "p12" in issued.files:
            self.downloads.value += p12_links(issued.files["p12"], issued.p12_password)
        return issued_card(issued, password_note="generated: shown once below, next to the p12's download link")


class SignCSRForm(_Form):
    """The CA signs a request made elsewhere (step 7 for someone else's key): upload the CSR,
    choose the profile; the certificate can be downloaded, the key never left its owner."""

    title = "Sign a certificate request (CSR)"
    button_label = "Sign the request"
    button_class = "kl-sign-csr-button"

    def __init__(self, workspace: Workspace) -> None:
        self.upload = _classed(
            widgets.FileUpload(accept=".csr,.req,.pem,.der", multiple=False, description="Upload CSR"), "kl-csr-upload"
        )
        self.profile = _classed(
            widgets.ToggleButtons(options=["client", "server"], value="client", description="Profile", style=_STYLE),
            "kl-field-profile",
        )
        self.name = _file_name_field("csr-name", "empty: the request's CN; names NAME.crt")
        self.days = _days_field("csr-days", LEAF_DAYS)
        super().__init__(workspace, [self.upload, self.profile, self.name, self.days])
        self.add_class("kl-sign-csr-form")

    def request_bytes(self) -> bytes:
        if not self.upload.value:
            raise KittylabError("upload a certificate request first (a .csr file, PEM or DER)")
        return bytes(self.upload.value[0]["content"])

    def act(self) -> Card:
        issued = self.workspace.sign_csr(
            self.request_bytes(), profile=self.profile.value, name=self.name.value or None, days=self.days.value
        )
        self._say(f"signed {issued.name} (serial {issued.record.serial_hex}): its key stays with whoever sent the request")
        self.downloads.value = download_link(issued.files["crt"], mime="application/x-pem-file")
        return issued_card(issued)


class P12Options(widgets.VBox):
    """A p12's password (empty: generated) and flavour, modern or legacy, with a line on each."""

    def __init__(self) -> None:
        self.password = _classed(
            _text("p12 password", placeholder="empty: generate a strong one", password=True), "kl-field-password"
        )
        self.flavour = _classed(
            widgets.ToggleButtons(options=list(P12_FLAVOURS), value="modern", description="p12 flavour", style=_STYLE),
            "kl-field-p12-flavour",
        )
        self.note = _classed(widgets.Label(value=P12_FLAVOURS["modern"]), "kl-p12-flavour-note")
        self.flavour.observe(lambda change: setattr(self.note, "value", P12_FLAVOURS[change["new"]]), names="value")
        super().__init__([self.password, self.flavour, self.note])
        self.add_class("kl-p12-options")

    @property
    def legacy(self) -> bool:
        return self.flavour.value == "legacy"


def p12_links(path: Path, generated_password: str | None) -> str:
    """The p12's download link, and its generated password, shown this once."""
    links = download_link(path, mime="application/x-pkcs12")
    if generated_password:
        links += macro("widgets.html", "p12_password", password=generated_password)
    return links


#: Sort keys of the dashboard: label -> (key of a record, newest/worst first?).
_STATUS_ORDER = ("expiring", "revoked", "expired", "not-yet-valid", "valid", "superseded")
SORT_KEYS: dict[str, Callable[[Record], object]] = {
    "name": lambda r: (r.name.lower(), r.issued_at),
    "status": lambda r: _STATUS_ORDER.index(r.status()) if r.status() in _STATUS_ORDER else 99,
    "expiry": lambda r: r.not_after,
    "issued": lambda r: r.issued_at,
    "profile": lambda r: (r.profile, r.name.lower()),
}


class Dashboard(widgets.VBox, _Refreshable):
    """Everything the CA issued: a sortable, filterable table with status and expiry, revoke and
    export, the CRL's next update and the chain of trust; redrawn after every action.

    ``filter`` presets the filter box (matched against name, subject, profile, status and
    serial), or is a function of a :class:`~kittylab.Record` that always applies (a workshop
    notebook keeps its own participants).
    """

    def __init__(
        self, workspace: Workspace, *, filter: str | Callable[[Record], bool] = "", diagram: bool = True  # noqa: A002
    ) -> None:
        self.workspace = workspace
        self._keep: Callable[[Record], bool] = filter if callable(filter) else (lambda record: True)
        self.filter = _classed(
            widgets.Text(value="" if callable(filter) else filter, placeholder="filter: name, OU=..., revoked", description="Filter"),
            "kl-dashboard-filter",
        )
        self.sort = _classed(widgets.Dropdown(options=list(SORT_KEYS), value="name", description="Sort by"), "kl-dashboard-sort")
        self.descending = _classed(widgets.Checkbox(value=False, description="descending", indent=False), "kl-dashboard-descending")
        for control in (self.filter, self.sort, self.descending):
            control.observe(lambda change: self.refresh(), names="value")
        self.table = _classed(widgets.HTML(value=""), "kl-dashboard-table")
        self.crl = _classed(widgets.HTML(value=""), "kl-dashboard-crl")
        self.choice = _classed(widgets.Dropdown(options=[], description="Certificate"), "kl-dashboard-select")
        self.reason = _classed(widgets.Dropdown(options=list(REASONS), value="unspecified", description="Reason"), "kl-dashboard-reason")
        self.revoke_button = _classed(widgets.Button(description="Revoke", button_style="danger", icon="ban", layout=_AUTO), "kl-revoke-button")
        self.export_button = _classed(widgets.Button(description="Export", icon="download", layout=_AUTO), "kl-export-button")
        self.crl_button = _classed(widgets.Button(description="Publish CRL", icon="refresh", layout=_AUTO), "kl-publish-crl-button")
        self.renew_button = _classed(widgets.Button(description="Renew", icon="repeat", layout=_AUTO), "kl-renew-button")
        # Revoking cannot be undone: the button asks first, and only "Yes, revoke" revokes.
        self.question = _classed(widgets.Label(value=""), "kl-revoke-question")
        self.confirm_button = _classed(
            widgets.Button(description="Yes, revoke", button_style="danger"), "kl-revoke-confirm-button"
        )
        self.cancel_button = _classed(widgets.Button(description="Cancel"), "kl-revoke-cancel-button")
        self.confirmation = _classed(
            widgets.HBox([self.question, self.confirm_button, self.cancel_button]), "kl-revoke-confirmation"
        )
        self.confirmation.layout.display = "none"
        for control in (self.choice, self.reason):  # the question was about the one chosen before
            control.observe(lambda change: setattr(self.confirmation.layout, "display", "none"), names="value")
        self.p12_options = P12Options()
        self.message = _classed(widgets.Label(value=""), "kl-dashboard-message")
        self.downloads = _classed(widgets.HTML(value=""), "kl-downloads")
        self.diagram = _classed(widgets.HTML(value=""), "kl-trust-diagram")
        self.diagram.layout.display = None if diagram else "none"
        self.revoke_button.on_click(lambda _: self._act(self.ask_to_revoke))
        self.confirm_button.on_click(lambda _: self._act(self.revoke))
        self.cancel_button.on_click(lambda _: self._act(self.cancel_revoke))
        self.export_button.on_click(lambda _: self._act(self.export))
        self.crl_button.on_click(lambda _: self._act(self.publish_crl))
        self.renew_button.on_click(lambda _: self._act(self.renew))
        super().__init__(
            [
                widgets.HTML(value=macro("widgets.html", "heading", title="Certificates")),
                widgets.HBox([self.filter, self.sort, self.descending]),
                self.table,
                self.crl,
                widgets.HBox([self.choice, self.reason, self.revoke_button, self.export_button, self.renew_button,
                              self.crl_button]),
                self.confirmation,
                self.p12_options,
                self.message,
                self.downloads,
                self.diagram,
            ]
        )
        self.add_class("kl-dashboard")
        self._watch()
        self.refresh()

    # -- what is shown ---------------------------------------------------------------------

    def rows(self) -> list[Record]:
        """The records the table shows, filtered and sorted as the controls say."""
        needle = self.filter.value.strip().lower()

        def matches(record: Record) -> bool:
            haystack = (record.name, record.subject, record.profile, record.status(), record.serial_hex)
            return self._keep(record) and (not needle or any(needle in text.lower() for text in haystack))

        shown = [record for record in self.workspace.records() if matches(record)]
        return sorted(shown, key=SORT_KEYS[self.sort.value], reverse=self.descending.value)

    def refresh(self) -> None:
        """Read the store again and redraw the table, the choices, the CRL line and the diagram."""
        rows = self.rows()
        self.table.value = _table_html(rows)
        chosen = self.choice.value
        options = [
            (f"{r.name} ({r.status()}, serial {r.serial_hex[:8]}\u2026)", r.serial)
            for r in rows
            if r.issuer != r.name  # a root cannot be revoked
        ]
        self.choice.options = options
        if chosen in [value for _, value in options]:
            self.choice.value = chosen
        self.crl.value = self._crl_html()
        if self.diagram.layout.display != "none":
            filter_text = self.filter.value.strip()
            self.diagram.value = trust_diagram(self.workspace, filter=filter_text).svg if self.workspace.has_ca else ""

    def _crl_html(self) -> str:
        if not self.workspace.has_ca:
            return "<i>no CA yet</i>"
        lines = []
        for name in self.workspace.ca_names():
            crl = self.workspace.current_crl(name)
            text = f"{name}: no CRL published"
            if crl is not None and crl.next_update_utc is not None:
                text = f"CRL of {name}: next update {when(crl.next_update_utc)} ({len(list(crl))} revoked)"
            lines.append(text)
        return macro("widgets.html", "crls", texts=lines, warning=self.workspace.crl_warning())

    # -- actions ---------------------------------------------------------------------------

    def _act(self, action: Callable[[], str]) -> None:
        self.downloads.value = ""
        try:
            text, error = action(), False
        except KittylabError as exc:
            text, error = str(exc), True
        self.message.value = text
        set_tone(self.message, error=error)
        self._after_action()

    def _chosen(self) -> Record:
        if self.choice.value is None:
            raise KittylabError("choose a certificate first")
        return self.workspace.find(self.choice.value)

    def revoke(self) -> str:
        """Revoke the chosen certificate for the chosen reason; the CRL is published at once."""
        self.confirmation.layout.display = "none"
        record = self.workspace.revoke(self._chosen().serial, reason=self.reason.value)
        return f"revoked {record.name} (serial {record.serial_hex}, {record.reason}); new CRL written: reload the servers"

    def export(self) -> str:
        """Links to download the chosen certificate and, if its key is here, a new p12; if kittylab
        does not hold the key (it signed a CSR), it says so: only the key's owner can make a p12."""
        record = self._chosen()
        links = download_link(self.workspace.path(record.name, "crt"), mime="application/x-pem-file")
        said = f"exported {record.name}.crt"
        refusal = self.workspace.why_no_p12(record)
        if refusal is None:
            path, generated = self.workspace.export_p12(
                record.name, password=self.p12_options.password.value or None, legacy=self.p12_options.legacy
            )
            links += p12_links(path, generated)
            said += f" and {path.name}"
        else:
            said += f"; no p12: {refusal}"
        self.downloads.value = links
        return said

    def ask_to_revoke(self) -> str:
        """Show what revoking the chosen certificate means, with "Yes, revoke" and "Cancel"."""
        record = self._chosen()
        self.question.value = (f"Revoke {record.name} (serial {record.serial_hex[:16]}\u2026) for {self.reason.value}?"
                               " It cannot be undone: servers refuse it once they load the new CRL.")
        self.confirmation.layout.display = None
        return ""

    def cancel_revoke(self) -> str:
        self.confirmation.layout.display = "none"
        return "nothing revoked"

    def renew(self) -> str:
        """A new certificate for the chosen one's name, same key and names; the old one is superseded."""
        record = self._chosen()
        renewed = self.workspace.renew(record.name)
        return (f"renewed {renewed.name}: serial {renewed.record.serial_hex[:16]}\u2026, valid until"
                f" {renewed.record.not_after:%Y-%m-%d}; the old certificate is superseded")

    def publish_crl(self) -> str:
        """Sign a new CRL; a link downloads it and the message says where the file is."""
        crl = self.workspace.publish_crl()
        path = self.workspace.crl_path
        self.downloads.value = download_link(path, mime="application/x-pem-file")
        return (f"published a new CRL in {path}, valid until {when(crl.next_update_utc)}:"
                " reload the servers")


def _table_html(rows: Iterable[Record]) -> str:
    now = dt.datetime.now(dt.timezone.utc)
    shown = [(record, status_badge(record.status(now=now)), max(0, (record.not_after - now).days)) for record in rows]
    return macro("widgets.html", "dashboard_table", rows=shown)


def workbench(workspace: Workspace, *, filter: str | Callable[[Record], bool] = "") -> widgets.Tab:  # noqa: A002
    """The three characters' moves, signing a request made elsewhere, and the dashboard, in one
    set of tabs (kl-workbench)."""
    tabs = widgets.Tab(
        children=[CreateCAForm(workspace), IssueServerForm(workspace), IssueClientForm(workspace), SignCSRForm(workspace),
                  Dashboard(workspace, filter=filter)],
        titles=("kitty-ca", "picture-server", "eager-client", "Sign a CSR", "Dashboard"),
    )
    return _classed(tabs, "kl-workbench")
