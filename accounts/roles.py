"""The three roles and what each may do. Permissions are named by string, so no app is imported here."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ANNOTATOR = "annotator"
    CATALOG_MANAGER = "catalog_manager"
    ADMIN = "admin"


VIEW = ["catalog.view_product", "catalog.view_category", "catalog.view_importjob"]
MANAGE = [
    "catalog.change_product",
    "catalog.add_product",
    "catalog.import_products",
    "catalog.export_products",
    "catalog.edit_taxonomy",
    "catalog.add_importjob",
]

MODELS_VIEW = [
    "mlcore.view_modelversion",
    "mlcore.view_trainingrun",
    "mlcore.view_rescorejob",
    "mlcore.view_labelaudit",
]
MODELS_MANAGE = [
    "mlcore.add_trainingrun",
    "mlcore.change_modelversion",
    "mlcore.add_rescorejob",
    "mlcore.add_labelaudit",
    "mlcore.change_retrainingpolicy",
]

LABEL = ["labeling.add_annotation", "labeling.view_annotation", "labeling.view_labelingqueue"]
REVIEW = [
    "labeling.view_reclassificationbatch",
    "labeling.change_reclassificationbatch",
    "labeling.apply_reclassificationbatch",
    "labeling.view_reviewitem",
    "labeling.change_reviewitem",
    "labeling.add_labelingqueue",
    "labeling.change_labelingqueue",
]

ROLE_PERMISSIONS: dict[Role, list[str]] = {
    Role.ANNOTATOR: VIEW + LABEL,
    Role.CATALOG_MANAGER: VIEW + MANAGE + MODELS_VIEW + LABEL + REVIEW,
    Role.ADMIN: VIEW + MANAGE + MODELS_VIEW + MODELS_MANAGE + LABEL + REVIEW + ["auth.view_user", "auth.change_user"],
}
