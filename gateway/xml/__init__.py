"""The only place that parses XML, and the XSD registry.

Nothing else in the gateway calls lxml's parser: every byte string from outside goes through
:func:`parse_xml`, which refuses DTDs, entities, network access, oversize documents and
documents past the structural limits of :class:`XmlLimits`.
"""

from gateway.xml.parser import XmlLimits, parse_xml, refuse_comments_and_pis, serialize
from gateway.xml.schemas import SchemaRegistry

__all__ = ["SchemaRegistry", "XmlLimits", "parse_xml", "refuse_comments_and_pis", "serialize"]
