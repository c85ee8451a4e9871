"""Helpers that build stalls, merchants, claims and credentials through the real API."""
from __future__ import annotations

import io

from PIL import Image

USCC_A = "91350100M000100Y43"
USCC_B = "91110000802100433B"


def jpeg_bytes(size=(64, 48), color=(200, 120, 40), exif=None) -> bytes:
    buffer = io.BytesIO()
    image = Image.new("RGB", size, color)
    if exif is not None:
        image.save(buffer, format="JPEG", exif=exif)
    else:
        image.save(buffer, format="JPEG")
    return buffer.getvalue()


class Shop:
    def __init__(self, client, auth, make_market) -> None:
        self.client = client
        self.auth = auth
        self.make_market = make_market

    def market(self, name="梧州市万秀区东中农贸市场", region_code="450403"):
        return self.make_market(name=name, region_code=region_code)

    def manager(self, market, openid="manager-1"):
        return self.auth.login(openid, role="market_manager", scope=f"market:{market.id}")

    def stalls(self, market, manager, numbers) -> list[dict]:
        response = self.client.post(f"/api/v1/markets/{market.id}/stalls", json={"numbers": numbers},
                                    headers=manager.headers)
        assert response.status_code == 201, response.get_json()
        return response.get_json()["items"]

    def merchant(self, openid="merchant-a", uscc=USCC_A, name="万秀区李记蔬菜店"):
        login = self.auth.login(openid)
        response = self.client.post("/api/v1/merchants", headers=login.headers, json={
            "name": name, "kind": "个体工商户", "uscc": uscc, "operator_name": "李明"})
        assert response.status_code == 201, response.get_json()
        return login, response.get_json()["id"]

    def claim(self, login, merchant_id, token, expect=201):
        response = self.client.post(f"/api/v1/stalls/{token}/claim", json={"merchant_id": merchant_id},
                                    headers=login.headers)
        assert response.status_code == expect, response.get_json()
        return response

    def review_claim(self, manager, token, decision="approve", reason=None, expect=200):
        response = self.client.post(f"/api/v1/stalls/{token}/claim/review",
                                    json={"decision": decision, "reason": reason}, headers=manager.headers)
        assert response.status_code == expect, response.get_json()
        return response

    def upload(self, login, merchant_id, kind="business_licence", number=USCC_A, valid_until="2030-06-30",
               long_term=False, photo=None, filename="photo.jpg", headers=None, content_type="image/jpeg"):
        form = {"kind": kind, "number": number, "issuer": "梧州市万秀区市场监督管理局",
                "valid_from": "2024-01-01", "long_term": "true" if long_term else "false",
                "photo": (io.BytesIO(photo if photo is not None else jpeg_bytes()), filename, content_type)}
        if valid_until and not long_term:
            form["valid_until"] = valid_until
        return self.client.post(f"/api/v1/merchants/{merchant_id}/credentials", data=form,
                                headers={**login.headers, **(headers or {})},
                                content_type="multipart/form-data")

    def credential(self, login, merchant_id, **kwargs) -> int:
        response = self.upload(login, merchant_id, **kwargs)
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    def verify(self, reviewer, credential_id, decision="approve", reason=None, expect=200):
        response = self.client.post(f"/api/v1/credentials/{credential_id}/review",
                                    json={"decision": decision, "reason": reason}, headers=reviewer.headers)
        assert response.status_code == expect, response.get_json()
        return response

    def held_stall(self, market=None, numbers=("A-01", "A-02")):
        """A market with stalls, its manager, and merchant A holding the first stall."""
        market = market or self.market()
        manager = self.manager(market)
        stalls = self.stalls(market, manager, list(numbers))
        login, merchant_id = self.merchant()
        self.claim(login, merchant_id, stalls[0]["token"])
        self.review_claim(manager, stalls[0]["token"])
        return market, manager, stalls, login, merchant_id

    def trusted_stall(self, until="2026-06-30", pledge=False):
        """Stall A-01 with a verified licence (长期) and a verified food permit valid until `until`;
        with `pledge`, also an integrity pledge signed and approved (in force for 12 months)."""
        market, manager, stalls, login, merchant_id = self.held_stall()
        licence = self.credential(login, merchant_id, long_term=True)
        permit = self.credential(login, merchant_id, kind="food_business", number="JY14504030012345",
                                 valid_until=until)
        self.verify(manager, licence)
        self.verify(manager, permit)
        if pledge:
            self.approved_pledge(login, merchant_id, manager)
        return market, manager, stalls[0]["token"], login, merchant_id

    def approved_pledge(self, login, merchant_id, manager, market_id=None) -> int:
        """Sign the region's pledge template (for `market_id` when the entity holds stalls in
        several markets) and have the market's manager approve it."""
        from app.extensions import db
        from app.pledges.models import PledgeTemplate

        template = PledgeTemplate(title="诚信经营承诺书", region_code="450000", term_months=12, version=1,
                                  active=True, items=["明码标价", "计量准确足量"])
        db.session.add(template)
        db.session.commit()
        signed = self.client.post(f"/api/v1/merchants/{merchant_id}/pledges", headers=login.headers,
                                  json={"template_id": template.id, "signer_name": "李明",
                                        **({"market_id": market_id} if market_id else {})})
        assert signed.status_code == 201, signed.get_json()
        approved = self.client.post(f"/api/v1/pledges/{signed.get_json()['id']}/review",
                                    json={"decision": "approve"}, headers=manager.headers)
        assert approved.status_code == 200, approved.get_json()
        return signed.get_json()["id"]
