"""The desk's pages and static files, the locally installed chart library, Prometheus metrics."""
from __future__ import annotations

from pathlib import Path

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from dashboard.common import services

HERE = Path(__file__).resolve().parent.parent
STATIC = HERE / "static"
VENDOR = HERE / "node_modules"
PAGES = {"/": "status.html", "/login": "login.html", "/desk": "desk.html", "/reports": "reports.html",
         "/wallboard": "wallboard.html"}
PAGES["/prompts"] = "prompts.html"      # issue 20: supervisors' prompts page
PAGES["/knowledge"] = "knowledge.html"     # the knowledge base's maintenance (issue 20)

routes = web.RouteTableDef()


def _page(name: str):
    async def handler(request):
        return web.FileResponse(STATIC / name, headers={"Cache-Control": "no-cache"})
    return handler


for _path, _name in PAGES.items():
    routes.get(_path)(_page(_name))
routes.static("/static/", STATIC)


@routes.get("/vendor/echarts.min.js")
async def echarts(request):
    """The chart library, installed locally by setup (npm; never from a CDN)."""
    path = VENDOR / "echarts" / "dist" / "echarts.min.js"
    if not path.exists():
        return web.Response(status=404, text="// echarts is not installed: run `make demo` or scripts/bootstrap.sh",
                            content_type="application/javascript")
    return web.FileResponse(path, headers={"Cache-Control": "max-age=86400"})


@routes.get("/vendor/sip.js/{path:.+}")
async def sipjs(request):
    """The browser phone's SIP library (sip.js, ES modules importing each other by relative path),
    installed locally by setup like the chart library."""
    lib = (VENDOR / "sip.js" / "lib").resolve()
    path = (lib / request.match_info["path"]).resolve()
    if not lib.exists():
        return web.Response(status=404, text="// sip.js is not installed: run `make demo` or scripts/bootstrap.sh",
                            content_type="application/javascript")
    if not path.is_relative_to(lib) or path.suffix != ".js" or not path.is_file():
        return web.Response(status=404, text="// no such module", content_type="application/javascript")
    return web.FileResponse(path, headers={"Cache-Control": "max-age=86400", "Content-Type": "application/javascript"})


@routes.get("/metrics")
async def metrics(request):
    return web.Response(body=generate_latest(services(request).metrics),
                        headers={"Content-Type": CONTENT_TYPE_LATEST})
