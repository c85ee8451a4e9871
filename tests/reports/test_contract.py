"""PRODUCT.md, "Riders and models (contract additions, second wave)": the rider-report paths and
methods are served and documented, with the figures and category endpoints this release adds."""
RIDER_REPORTS = [
    ("get", "/api/v1/report-categories"), ("post", "/api/v1/reports"), ("get", "/api/v1/reports"),
    ("get", "/api/v1/reports/{report_id}"), ("post", "/api/v1/reports/{report_id}/accept"),
    ("post", "/api/v1/reports/{report_id}/decide"), ("post", "/api/v1/reports/{report_id}/rectified"),
    ("post", "/api/v1/reports/{report_id}/transfer"),
    # additions: category points, figures, heat map, photos
    ("patch", "/api/v1/report-categories/{category_code}"), ("get", "/api/v1/reports/stats"),
    ("get", "/api/v1/reports/heatmap"), ("get", "/api/v1/reports/{report_id}/photos/{photo_key}.jpg"),
]


def test_the_rider_report_contract_is_served_and_documented(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    paths = spec["paths"]
    assert [(m, p) for m, p in RIDER_REPORTS if m not in paths.get(p, {})] == []
    for method, path in RIDER_REPORTS:
        assert paths[path][method].get("summary"), (method, path)
    form = paths["/api/v1/reports"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["$ref"].endswith("/ReportForm")
    fields = spec["components"]["schemas"]["ReportForm"]["properties"]
    assert "GCJ-02" in fields["lat"]["description"] and "wx.getLocation" in fields["lng"]["description"]
    assert fields["photos"]["type"] == "array"
    decide = spec["components"]["schemas"]["Decide"]["properties"]["decision"]
    assert decide["enum"] == ["upheld", "unfounded"] and decide["x-enum-labels"]["unfounded"] == "不属实"
