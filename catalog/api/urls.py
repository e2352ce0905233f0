from __future__ import annotations

from django.urls import path
from rest_framework.authtoken.views import obtain_auth_token
from rest_framework.routers import DefaultRouter

from catalog.api.views import CategoryViewSet, ImportJobViewSet, ProductViewSet

router = DefaultRouter()
router.register("products", ProductViewSet, basename="product")
router.register("categories", CategoryViewSet, basename="category")
router.register("imports", ImportJobViewSet, basename="import")
urlpatterns = [
    # POST username + password, get the token for `Authorization: Token <key>`.
    path("auth/token/", obtain_auth_token, name="api-token"),
    *router.urls,
]
