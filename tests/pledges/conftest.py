"""A market with a manager, a merchant holding a stall there, and the 广西 template."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.pledges.factories import make_merchant, make_stall, make_template


@dataclass
class PledgeWorld:
    client: object
    market: object
    other_market: object
    merchant: object
    stall: object
    template: object
    owner: object
    manager: object

    def sign(self, who=None, merchant_id=None, headers=None, **body):
        body.setdefault("template_id", self.template.id)
        body.setdefault("signer_name", "李小兰")
        who = who or self.owner
        return self.client.post(f"/api/v1/merchants/{merchant_id or self.merchant.id}/pledges",
                                json=body, headers={**who.headers, **(headers or {})})

    def review(self, pledge_id, decision="approve", reason=None, who=None):
        body = {"decision": decision}
        if reason is not None:
            body["reason"] = reason
        return self.client.post(f"/api/v1/pledges/{pledge_id}/review", json=body,
                                headers=(who or self.manager).headers)

    def revoke(self, pledge_id, reason="消费者投诉经查属实", who=None):
        body = {} if reason is None else {"reason": reason}
        return self.client.post(f"/api/v1/pledges/{pledge_id}/revoke", json=body,
                                headers=(who or self.manager).headers)


@pytest.fixture
def world(client, auth, make_market) -> PledgeWorld:
    market = make_market(name="梧州市新兴农贸市场", region_code="450403")
    other = make_market(name="长洲区综合市场", region_code="450405")
    owner = auth.login("merchant-li", role="merchant")
    merchant = make_merchant(owner.user_id)
    stall = make_stall(market, "A-01", merchant)
    manager = auth.login("mgr-xinxing", role="market_manager", scope=f"market:{market.id}")
    return PledgeWorld(client=client, market=market, other_market=other, merchant=merchant,
                       stall=stall, template=make_template("450000"), owner=owner, manager=manager)
