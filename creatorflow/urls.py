from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "CreatorFlow administration"
admin.site.site_title = "CreatorFlow administration"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("orders.urls")),
    path("", include("realtime.urls")),
]
