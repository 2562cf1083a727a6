"""HTML forms of the accounts context."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DecimalField,
    EmailField,
    PasswordField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    Email,
    EqualTo,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from exchange.accounts.regions import PROVINCES
from exchange.accounts.rules import MIN_PASSWORD_LENGTH, Role, Sector

SECTOR_LABELS = {
    Sector.STEEL: _l("Steel"),
    Sector.CEMENT: _l("Cement"),
    Sector.BRICKS_CERAMICS: _l("Bricks and ceramics"),
    Sector.ROAD: _l("Road building"),
    Sector.CHEMICALS: _l("Chemicals"),
    Sector.SOIL: _l("Soil amendment"),
    Sector.BACKFILL: _l("Backfill"),
    Sector.ALUMINA: _l("Alumina refining"),
    Sector.BYPRODUCT_PROCESSING: _l("By-product processing"),
    Sector.LOGISTICS: _l("Logistics"),
    Sector.OTHER: _l("Other"),
}
ROLE_LABELS = {Role.OWNER: _l("Owner"), Role.TRADER: _l("Trader"), Role.VIEWER: _l("Viewer")}

REQUIRED = _l("This field is required.")


def province_choices() -> list[tuple[str, str]]:
    from exchange.i18n import is_zh

    zh = is_zh()
    return [("", _l("Choose…"))] + [
        (code, names[0] if zh else names[1]) for code, names in PROVINCES.items()
    ]


def _password(label: str) -> PasswordField:
    return PasswordField(
        label,
        validators=[
            DataRequired(REQUIRED),
            Length(
                min=MIN_PASSWORD_LENGTH,
                max=200,
                message=_l("Use between %(min)d and %(max)d characters."),
            ),
        ],
        render_kw={"autocomplete": "new-password"},
    )


class SiteFields:
    """Fields shared by the registration form and the add-site form."""

    @staticmethod
    def latitude() -> DecimalField:
        return DecimalField(
            _l("Latitude (°N)"),
            places=6,
            validators=[
                DataRequired(REQUIRED),
                NumberRange(
                    min=3, max=54, message=_l("A latitude in China lies between 3 and 54.")
                ),
            ],
        )

    @staticmethod
    def longitude() -> DecimalField:
        return DecimalField(
            _l("Longitude (°E)"),
            places=6,
            validators=[
                DataRequired(REQUIRED),
                NumberRange(
                    min=73, max=136, message=_l("A longitude in China lies between 73 and 136.")
                ),
            ],
        )


class RegisterForm(FlaskForm):
    legal_name_zh = StringField(
        _l("Legal name (Chinese)"), validators=[DataRequired(REQUIRED), Length(max=200)]
    )
    legal_name_en = StringField(
        _l("Legal name (English, optional)"), validators=[Optional(), Length(max=200)]
    )
    uscc = StringField(
        _l("Unified social credit code"),
        validators=[DataRequired(REQUIRED), Length(max=30)],
        description=_l("18 characters, on the business licence."),
    )
    is_producer = BooleanField(_l("We sell red mud or red-mud products (producer)"))
    is_buyer = BooleanField(_l("We buy or take red mud or red-mud products (buyer)"))
    sector = SelectField(_l("Sector"), validators=[DataRequired(REQUIRED)])
    province = SelectField(_l("Province"), validators=[DataRequired(REQUIRED)])
    city = StringField(_l("City"), validators=[DataRequired(REQUIRED), Length(max=80)])
    address = StringField(_l("Address"), validators=[Optional(), Length(max=300)])
    site_name = StringField(
        _l("First plant or site name"), validators=[DataRequired(REQUIRED), Length(max=120)]
    )
    latitude = SiteFields.latitude()
    longitude = SiteFields.longitude()
    contact_name = StringField(
        _l("Your name"), validators=[DataRequired(REQUIRED), Length(max=100)]
    )
    contact_phone = StringField(_l("Phone"), validators=[DataRequired(REQUIRED), Length(max=40)])
    email = EmailField(
        _l("E-mail (your login)"),
        validators=[
            DataRequired(REQUIRED),
            Email(message=_l("Enter a valid e-mail address.")),
            Length(max=254),
        ],
    )
    password = _password(_l("Password"))
    password2 = PasswordField(
        _l("Repeat password"),
        validators=[
            DataRequired(REQUIRED),
            EqualTo("password", message=_l("The passwords differ.")),
        ],
    )
    submit = SubmitField(_l("Register"))

    def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.sector.choices = [("", _l("Choose…"))] + [
            (s.value, label) for s, label in SECTOR_LABELS.items()
        ]
        self.province.choices = province_choices()

    def validate_is_buyer(self, field: BooleanField) -> None:
        if not (self.is_producer.data or field.data):
            raise ValidationError(_l("Choose producer, buyer or both."))


class LoginForm(FlaskForm):
    email = EmailField(
        _l("E-mail"),
        validators=[DataRequired(REQUIRED), Length(max=254)],
        render_kw={"autocomplete": "username"},
    )
    password = PasswordField(
        _l("Password"),
        validators=[DataRequired(REQUIRED)],
        render_kw={"autocomplete": "current-password"},
    )
    remember = BooleanField(_l("Keep me logged in"))
    submit = SubmitField(_l("Log in"))


class ForgotPasswordForm(FlaskForm):
    email = EmailField(
        _l("E-mail"),
        validators=[DataRequired(REQUIRED), Email(message=_l("Enter a valid e-mail address."))],
    )
    submit = SubmitField(_l("Send reset link"))


class ResetPasswordForm(FlaskForm):
    password = _password(_l("New password"))
    password2 = PasswordField(
        _l("Repeat new password"),
        validators=[
            DataRequired(REQUIRED),
            EqualTo("password", message=_l("The passwords differ.")),
        ],
    )
    submit = SubmitField(_l("Set new password"))


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(
        _l("Current password"),
        validators=[DataRequired(REQUIRED)],
        render_kw={"autocomplete": "current-password"},
    )
    new_password = _password(_l("New password"))
    new_password2 = PasswordField(
        _l("Repeat new password"),
        validators=[
            DataRequired(REQUIRED),
            EqualTo("new_password", message=_l("The passwords differ.")),
        ],
    )
    submit = SubmitField(_l("Change password"))


class InviteForm(FlaskForm):
    email = EmailField(
        _l("Colleague's e-mail"),
        validators=[DataRequired(REQUIRED), Email(message=_l("Enter a valid e-mail address."))],
    )
    role = SelectField(
        _l("Role"),
        choices=[(r.value, label) for r, label in ROLE_LABELS.items()],
        default=Role.TRADER.value,
    )
    submit = SubmitField(_l("Send invitation"))


class AcceptInvitationForm(FlaskForm):
    display_name = StringField(
        _l("Your name"), validators=[DataRequired(REQUIRED), Length(max=100)]
    )
    password = _password(_l("Password"))
    password2 = PasswordField(
        _l("Repeat password"),
        validators=[
            DataRequired(REQUIRED),
            EqualTo("password", message=_l("The passwords differ.")),
        ],
    )
    submit = SubmitField(_l("Join"))


class SiteForm(FlaskForm):
    name = StringField(_l("Site name"), validators=[DataRequired(REQUIRED), Length(max=120)])
    province = SelectField(_l("Province"), validators=[DataRequired(REQUIRED)])
    city = StringField(_l("City"), validators=[DataRequired(REQUIRED), Length(max=80)])
    address = StringField(_l("Address"), validators=[Optional(), Length(max=300)])
    latitude = SiteFields.latitude()
    longitude = SiteFields.longitude()
    submit = SubmitField(_l("Add site"))

    def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.province.choices = province_choices()


class RoleForm(FlaskForm):
    role = SelectField(_l("Role"), choices=[(r.value, label) for r, label in ROLE_LABELS.items()])
    submit = SubmitField(_l("Change role"))


class ConfirmForm(FlaskForm):
    """An empty form: a CSRF-protected button."""

    submit = SubmitField(_l("Confirm"))


class DecisionForm(FlaskForm):
    decision = SelectField(
        _l("Decision"), choices=[("verified", _l("Verify")), ("rejected", _l("Reject"))]
    )
    reason = TextAreaField(
        _l("Reason (shown to the company; required to reject)"),
        validators=[Optional(), Length(max=500)],
    )
    submit = SubmitField(_l("Record decision"))


class ApiTokenForm(FlaskForm):
    name = StringField(
        _l("Name"),
        validators=[DataRequired(REQUIRED), Length(max=100)],
        description=_l("What will use it, e.g. “ERP production” or “lab LIMS”."),
    )
    scope = SelectField(
        _l("Access"),
        choices=[
            ("read", _l("Read only")),
            ("read_write", _l("Read and write (acts with your role)")),
        ],
        default="read",
    )
    submit = SubmitField(_l("Create token"))
