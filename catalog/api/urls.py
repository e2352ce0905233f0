from __future__ import annotations

from rest_framework.routers import DefaultRouter

from catalog.api.views import CategoryViewSet, ImportJobViewSet, ProductViewSet

router = DefaultRouter()
router.register("products", ProductViewSet, basename="product")
router.register("categories", CategoryViewSet, basename="category")
router.register("imports", ImportJobViewSet, basename="import")
urlpatterns = [*router.urls]
