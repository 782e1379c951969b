"""Root URLs: pages, allauth, the API under /api/v1/, the schema and docs."""

from allauth.account.decorators import secure_admin_login
from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts.api import MeApi
from family.api import EligibilityApi
from portal import csp, views

# Staff log in to the admin through allauth, so MFA and rate limits apply there too.
admin.site.login = secure_admin_login(admin.site.login)
admin.site.site_header = "家庭共济 管理"

# Swagger UI's page has a <style> block and its bundle sets style attributes: only this view allows inline
# styles. The split view loads its start-up script from the same URL, so script-src stays 'self'.
api_docs = csp_update({"style-src": [UNSAFE_INLINE]})(SpectacularSwaggerSplitView.as_view(url_name="api_schema"))

api_v1 = [
    path("me/", MeApi.as_view(), name="api_me"),
    path("eligibility/", EligibilityApi.as_view(), name="api_eligibility"),
    path("", include("family.api_urls")),
    path("cards/", include("cards.api_urls")),
    path("payments/", include("cards.payments_api_urls")),
    path("", include("family.wallet_api_urls")),
    path("", include("family.records_api_urls")),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon),
    path("csp-report/", csp.csp_report, name="csp_report"),
    path("", include("accounts.urls")),
    path("family/", include("family.urls")),
    path("card/", include("cards.urls")),
    path("counter/", include("cards.counter_urls")),
    path("face/", include("accounts.face_urls")),
    path("staff/review/", include("family.staff_urls")),
    path("staff/family-cards/", include("cards.staff_urls")),
    path("staff/audit/", include("accounts.staff_urls")),
    path("accounts/", include("allauth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("api/docs/", api_docs, name="api_docs"),
]

handler404 = "portal.views.page_not_found"
handler500 = "portal.views.server_error"
