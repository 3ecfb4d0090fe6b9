"""Reports over the gateway's own records: e-service usage, result indicators, VRAA.

=================  ===========================================================================
``usage.py``       the usage report (KPI-01): month ranges, counters with totals, CSV
``indicators.py``  the result indicators of a year against their targets (KPI-02 to KPI-05)
``render.py``      the indicator report in the terminal (rich, small bar charts)
``api.py``         ``/v1/reports``: usage (JSON or CSV), indicators, PLUS's totals
``vraa.py``        the monthly usage report to VRAA's public-service delivery records (T-13)
``synthetic.py``   a year of synthetic usage, written through the usage counters
``command.py``     ``plus-gateway reports ...``
=================  ===========================================================================
"""
