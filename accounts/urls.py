"""Login and logout pages for the demo, with Django's own views.

``/accounts/login/`` renders ``registration/login.html``; ``/accounts/logout/``
takes a POST (Django 5) and goes to ``LOGOUT_REDIRECT_URL``.
"""

from django.contrib.auth import views as auth_views
from django.urls import path

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
