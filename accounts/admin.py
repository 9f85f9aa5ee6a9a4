from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from .models import Creator


@admin.register(Creator)
class CreatorAdmin(UserAdmin):
    fieldsets = UserAdmin.fieldsets + (("CreatorFlow", {"fields": ("timezone",)}),)
    list_display = ("username", "email", "timezone", "is_staff")
