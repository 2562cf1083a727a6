import pytest

PUBLIC_PAGES = ["/", "/login", "/register", "/password/forgot", "/outbox", "/healthz"]


@pytest.mark.parametrize("path", PUBLIC_PAGES)
def test_public_pages_render(client, path):
    response = client.get(path)
    assert response.status_code == 200
