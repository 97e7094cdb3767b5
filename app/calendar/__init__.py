"""The official working-day calendar: public holidays and 调休 make-up working days, kept in the
database, seeded from the chinesecalendar package and extended by an administrator each year."""
