from django.urls import path

from . import views

app_name = "orders"
urlpatterns = [
    path("webhooks/tiktok/", views.tiktok_webhook, name="tiktok-webhook"),
]
