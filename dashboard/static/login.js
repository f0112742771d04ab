// the login page (no inline script: the Content-Security-Policy allows only our own files)
const form = document.getElementById("login-form");
form.addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await fetch("/api/login", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({user: document.getElementById("user").value.trim(), password: document.getElementById("password").value})});
  if (r.ok) {
    const next = new URLSearchParams(location.search).get("next") || "/desk";
    // our own pages only: "//host" and "/\\host" are other sites to a browser
    location.href = /^\/(?![\/\\])/.test(next) ? next : "/desk";
  } else {
    const body = await r.json().catch(() => ({}));
    document.getElementById("login-error").textContent = r.status === 429
      ? t("login_throttled").replace("{s}", r.headers.get("Retry-After") || "60")
      : t("login_failed") + (body.error ? "（" + body.error + "）" : "");
  }
});
applyI18n();
