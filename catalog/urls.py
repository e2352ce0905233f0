from __future__ import annotations

from django.urls import path

from catalog import views

app_name = "catalog"
urlpatterns = [
    path("products/", views.product_list, name="product-list"),
    path("products/export/", views.product_export, name="product-export"),
    path("products/<int:product_id>/", views.product_detail, name="product-detail"),
    path("categories/", views.category_browser, name="category-browser"),
    path("categories/search/", views.category_search, name="category-search"),
    path("categories/<int:category_id>/children/", views.category_children, name="category-children"),
    path("imports/", views.import_list, name="import-list"),
    path("imports/<int:job_id>/", views.import_detail, name="import-detail"),
    path("imports/<int:job_id>/cancel/", views.import_cancel, name="import-cancel"),
]
