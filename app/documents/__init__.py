"""Official documents as PDFs: 承办单, 回复意见, 退办单, 延办申请, 三单一函, the 归档 case file.

``sources`` turns ORM rows into plain data, ``render`` turns plain data into a PDF through the
Jinja templates in ``templates/documents/`` and WeasyPrint, ``seal`` draws the red 公章, and
``services.issue`` stores each document once per content (see docs/architecture.md).
"""
