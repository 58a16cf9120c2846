"""The controlled vocabularies of DESIGN §1 and §3, in one place.

Schemas validate against these, the database keeps them as short strings, and reports label them.
"""

SEXES = ("female", "male", "other", "unknown")
RISK_LEVELS = ("high", "medium", "low", "none")
AGE_ESTIMATION_METHODS = ("documented", "declared", "estimated", "medical", "unknown")
HOW_LEFT = ("formal_ddr", "escaped", "captured", "handed_over", "surrendered", "group_dissolved", "other")
CONSENT_PURPOSES = ("services", "tracing", "referral", "reporting")
CONSENT_GIVERS = ("child", "caregiver")
ASSESSMENT_KINDS = ("health", "psychosocial", "education", "livelihood", "protection")
SERVICE_TYPES = (
    "education", "vocational_training", "psychosocial", "medical", "economic", "family_mediation", "legal",
)
SERVICE_STATUSES = ("planned", "referred", "active", "completed", "dropped")
FOLLOWUP_KINDS = ("visit", "plan_review", "assessment_due", "reception_review")
FOLLOWUP_STATUSES = ("scheduled", "done", "missed", "cancelled")
NOT_SEEN_REASONS = ("abducted", "with_armed_group", "detained", "moved", "at_work", "at_school", "other")
# Reasons a child was not seen that put the child in danger: an urgent alert at once (DESIGN §2).
DANGER_NOT_SEEN_REASONS = ("abducted", "with_armed_group", "detained")
WELLBEING = ("good", "fair", "poor")
CONCERNS = ("re_recruitment", "protection", "school_dropout", "health", "family_conflict")
DANGER_CONCERNS = ("re_recruitment", "protection")
CLOSURE_REASONS = ("reintegrated", "transferred", "aged_out", "died", "lost_contact", "other")
ALERT_SEVERITIES = ("info", "warning", "urgent")
ALERT_STATUSES = ("open", "acknowledged", "resolved")
ROLES = ("admin", "manager", "caseworker", "analyst")
