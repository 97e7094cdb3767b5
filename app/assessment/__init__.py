"""第二十一条: the yearly assessment of the handling units (年度绩效考核, 反向扣分) and the centre's
periodic bulletins (通报)."""
