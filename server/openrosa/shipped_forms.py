"""The XLSForms Homecoming ships, written as rows, and the script that writes them as .xlsx files.

The .xlsx files in ``server/openrosa/forms/`` are what the server reads (a programme edits or adds
spreadsheets there, not Python); these rows are their source, so a change to a shipped form is a
readable diff. ``python -m server.openrosa.shipped_forms`` writes the files again, and
tests/test_openrosa_forms.py proves the committed files hold exactly these rows.

Mapping rules (docs/odk.md): a group named after an entity (``child``, ``consent``, ``assessment``,
``service``, ``followup``, ``stage_transition``), optionally ``entity__suffix`` to have several, is one
record; each question in it is the entity's field of the same name. A top-level ``case_code`` names the
child the records belong to; without one, the form registers a new child (it needs a ``child`` group).
A group whose questions are all empty (not relevant) records nothing.
"""

from pathlib import Path

from models import vocab
from models.lifecycle import STAGES

FORMS_DIR = Path(__file__).resolve().parent / "forms"
LANGS = ("English (en)", "French (fr)")
SURVEY_HEADER = ("type", "name", "label::English (en)", "label::French (fr)", "required", "relevant",
                 "calculation", "default", "appearance", "constraint")
CHOICES_HEADER = ("list_name", "name", "label::English (en)", "label::French (fr)")
SETTINGS_HEADER = ("form_id", "form_title", "version", "default_language", "instance_name", "public_key")
# A ``public_key`` of "server" is replaced by the server's own key when the form is served (catalogue.py).
SERVER_KEY = "server"

# Choice labels in both languages; a value without one here is shown as itself in English.
FRENCH = {
    "formal_ddr": "DDR formel", "escaped": "Évadé", "captured": "Capturé", "handed_over": "Remis",
    "surrendered": "Rendu", "group_dissolved": "Groupe dissous",
    "female": "Fille", "male": "Garçon", "other": "Autre", "unknown": "Inconnu", "high": "Élevé",
    "medium": "Moyen", "low": "Faible", "none": "Aucun", "child": "L'enfant", "caregiver": "Le tuteur",
    "services": "Services", "tracing": "Recherche familiale", "referral": "Référence",
    "reporting": "Rapports", "yes": "Oui", "no": "Non", "good": "Bon", "fair": "Moyen", "poor": "Mauvais",
    "abducted": "Enlevé", "with_armed_group": "Avec un groupe armé", "detained": "Détenu",
    "moved": "A déménagé", "at_work": "Au travail", "at_school": "À l'école",
    "re_recruitment": "Re-recrutement", "protection": "Protection", "school_dropout": "Abandon scolaire",
    "health": "Santé", "family_conflict": "Conflit familial", "psychosocial": "Psychosocial",
    "education": "Éducation", "livelihood": "Moyens de subsistance", "vocational_training": "Formation professionnelle",
    "medical": "Médical", "economic": "Économique", "family_mediation": "Médiation familiale", "legal": "Juridique",
    "planned": "Prévu", "referred": "Référé", "active": "En cours", "completed": "Terminé", "dropped": "Abandonné",
}


def _label(value: str) -> tuple[str, str]:
    english = value.replace("_", " ").capitalize()
    return english, FRENCH.get(value, english)


def _choices(list_name: str, values) -> list[tuple]:
    return [(list_name, value, *_label(value)) for value in values]


def q(type_, name, en="", fr="", **columns) -> tuple:
    """One survey row; ``columns`` by header name (required, relevant, calculation, ...)."""
    row = {"type": type_, "name": name, "label::English (en)": en, "label::French (fr)": fr or en, **columns}
    return tuple(row.get(column, "") for column in SURVEY_HEADER)


def group(name, en, fr, rows, relevant="") -> list[tuple]:
    return [q("begin group", name, en, fr, relevant=relevant), *rows, q("end group", "")]


YES_NO = _choices("yes_no", ("yes", "no"))
PICK_CHILD = q("select_one_from_file caseload.csv", "case_code", "Child (case code)", "Enfant (code du dossier)",
               required="yes", appearance="search")
TODAY = "today()"


def _consent(purpose: str) -> list[tuple]:
    en, fr = _label(purpose)
    return group(f"consent__{purpose}", f"Consent: {en}", f"Consentement : {fr}", [
        q("calculate", "purpose", calculation=f"'{purpose}'"),
        q("select_one consent_giver", "given_by", "Given by", "Donné par", required="yes"),
        q("date", "given_on", "Given on", "Donné le", required="yes", default=TODAY,
          constraint=". <= today()"),
    ], relevant=f"selected(${{consents}}, '{purpose}')")


REGISTRATION = {
    "settings": ("homecoming_registration", "Homecoming: registration", "2026120301", "English (en)",
                 "concat('registration ', ${given_name})", ""),
    "survey": [
        *group("child", "The child", "L'enfant", [
            q("text", "given_name", "Given name", "Prénom", required="yes"),
            q("text", "family_name", "Family name", "Nom de famille"),
            q("select_one sex", "sex", "Sex", "Sexe", required="yes"),
            q("integer", "birth_year", "Year of birth", "Année de naissance",
              constraint=". >= 1950 and . <= 2100"),
            q("text", "district", "District", "District"),
            q("text", "village", "Village", "Village"),
            q("text", "family_contacts", "Family contacts", "Contacts de la famille"),
            q("date", "identified_on", "Identified on", "Identifié le", default=TODAY, constraint=". <= today()"),
            q("select_one yes_no", "unaccompanied", "Unaccompanied?", "Non accompagné ?"),
            q("select_one risk", "risk_level", "Risk level", "Niveau de risque"),
        ]),
        q("select_multiple consent_purpose", "consents", "Consent given for", "Consentement donné pour"),
        *[row for purpose in vocab.CONSENT_PURPOSES for row in _consent(purpose)],
    ],
    "choices": [*_choices("sex", vocab.SEXES), *YES_NO, *_choices("risk", vocab.RISK_LEVELS),
                *_choices("consent_purpose", vocab.CONSENT_PURPOSES),
                *_choices("consent_giver", vocab.CONSENT_GIVERS)],
}

VISIT = {
    "settings": ("homecoming_visit", "Homecoming: home visit", "2026120301", "English (en)",
                 "concat('visit ', ${case_code})", ""),
    "survey": [
        PICK_CHILD,
        *group("followup", "The visit", "La visite", [
            q("calculate", "kind", calculation="'visit'"),
            q("calculate", "status", calculation="'done'"),
            q("date", "completed_on", "Visited on", "Visité le", required="yes", default=TODAY,
              constraint=". <= today()"),
            q("select_one yes_no", "seen", "Was the child seen?", "L'enfant a-t-il été vu ?", required="yes"),
            q("select_one not_seen", "not_seen_reason", "Why not?", "Pourquoi pas ?", required="yes",
              relevant="${seen} = 'no'"),
            q("select_one wellbeing", "wellbeing", "Wellbeing", "Bien-être", relevant="${seen} = 'yes'"),
            q("select_one risk", "risk_level", "Risk level now", "Niveau de risque actuel", required="yes"),
            q("select_multiple concern", "concerns", "Concerns", "Préoccupations"),
            q("text", "notes", "Notes", "Notes"),
        ]),
    ],
    "choices": [*YES_NO, *_choices("not_seen", vocab.NOT_SEEN_REASONS), *_choices("wellbeing", vocab.WELLBEING),
                *_choices("risk", vocab.RISK_LEVELS), *_choices("concern", vocab.CONCERNS)],
}

ASSESSMENT = {
    "settings": ("homecoming_assessment", "Homecoming: assessment", "2026120301", "English (en)",
                 "concat('assessment ', ${case_code})", ""),
    "survey": [
        PICK_CHILD,
        *group("assessment", "The assessment", "L'évaluation", [
            q("select_one assessment_kind", "kind", "Kind", "Type", required="yes"),
            q("date", "assessed_on", "Assessed on", "Évalué le", required="yes", default=TODAY,
              constraint=". <= today()"),
            q("select_one risk", "risk_level", "Risk level", "Niveau de risque"),
            q("text", "notes", "Notes", "Notes"),
        ]),
    ],
    "choices": [*_choices("assessment_kind", vocab.ASSESSMENT_KINDS), *_choices("risk", vocab.RISK_LEVELS)],
}

SERVICE = {
    "settings": ("homecoming_service", "Homecoming: service", "2026120301", "English (en)",
                 "concat('service ', ${case_code})", ""),
    "survey": [
        PICK_CHILD,
        *group("service", "The service", "Le service", [
            q("select_one service_type", "type", "Service", "Service", required="yes"),
            q("text", "provider", "Provider", "Prestataire"),
            q("select_one service_status", "status", "Status", "Statut", required="yes"),
            q("date", "started_on", "Started on", "Commencé le"),
            q("text", "notes", "Notes", "Notes"),
        ]),
    ],
    "choices": [*_choices("service_type", vocab.SERVICE_TYPES),
                *_choices("service_status", vocab.SERVICE_STATUSES)],
}

STAGE = {
    "settings": ("homecoming_stage", "Homecoming: stage move", "2026120301", "English (en)",
                 "concat('stage ', ${case_code})", ""),
    "survey": [
        PICK_CHILD,
        *group("stage_transition", "The move", "Le changement d'étape", [
            q("select_one stage", "to_stage", "Move to stage", "Passer à l'étape", required="yes"),
            q("date", "occurred_on", "On", "Le", required="yes", default=TODAY, constraint=". <= today()"),
            q("text", "reason", "Why", "Pourquoi"),
        ]),
    ],
    "choices": _choices("stage", STAGES),
}

RESTRICTED_PROFILE = {
    "settings": ("homecoming_restricted_profile", "Homecoming: restricted profile (encrypted)", "2026120301",
                 "English (en)", "concat('profile ', ${case_code})", SERVER_KEY),
    "survey": [
        PICK_CHILD,
        *group("child", "Association with the armed group", "Association avec le groupe armé", [
            q("text", "armed_group", "Armed group", "Groupe armé"),
            q("text", "role_in_group", "Role in the group", "Rôle dans le groupe"),
            q("text", "recruitment", "How the child was recruited", "Comment l'enfant a été recruté"),
            q("date", "date_joined", "Joined on", "Entré le", constraint=". <= today()"),
            q("date", "date_left", "Left on", "Sorti le", constraint=". <= today()"),
            q("select_one how_left", "how_left", "How the child left", "Comment l'enfant est sorti"),
            q("text", "sexual_violence", "Sexual violence (only if the child chose to tell)",
              "Violences sexuelles (seulement si l'enfant a choisi d'en parler)"),
        ]),
    ],
    "choices": _choices("how_left", vocab.HOW_LEFT),
}

SHIPPED = {"registration": REGISTRATION, "visit": VISIT, "assessment": ASSESSMENT, "service": SERVICE,
           "stage": STAGE, "restricted_profile": RESTRICTED_PROFILE}


def sheets(form: dict) -> dict:
    """The rows of each sheet, header first, as the .xlsx holds them."""
    return {"survey": [SURVEY_HEADER, *form["survey"]], "choices": [CHOICES_HEADER, *form["choices"]],
            "settings": [SETTINGS_HEADER, form["settings"]]}


def write_xlsx(form: dict, path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for title, rows in sheets(form).items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append([cell if cell != "" else None for cell in row])
    book.save(path)


def main() -> None:
    FORMS_DIR.mkdir(exist_ok=True)
    for name, form in SHIPPED.items():
        write_xlsx(form, FORMS_DIR / f"{form['settings'][0]}.xlsx")
        print(f"wrote {name}: {FORMS_DIR / form['settings'][0]}.xlsx")


if __name__ == "__main__":
    main()
