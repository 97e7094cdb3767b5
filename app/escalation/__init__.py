"""The escalation ladder 三单一函 (第十三条, 第十九条, 第二十条) and in-app notifications."""
