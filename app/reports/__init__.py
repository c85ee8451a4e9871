"""骑手随手拍: riders report food-safety, pricing and licence problems they see on their rounds;
the market's managers or the county's regulators handle them; an upheld report earns points and,
on a stall, shows on its public badge until the stall is rectified."""
