"""Reading and writing the small XML documents of OpenRosa, safely.

Parsing goes through defusedxml with DTDs forbidden: no entity (an XML bomb, an external file) is
ever expanded. Names are compared without namespaces: Collect, KoboCollect and Enketo differ there.
"""

from xml.sax.saxutils import escape

from defusedxml import DefusedXmlException, ElementTree

RESPONSE_NS = "http://openrosa.org/http/response"


class BadXML(Exception):
    pass


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def parse(data: bytes):
    try:
        return ElementTree.fromstring(data, forbid_dtd=True)
    except DefusedXmlException:
        raise BadXML("The XML declares a DTD or entities, which this server never reads.") from None
    except ElementTree.ParseError as exc:
        raise BadXML(f"The XML is not well formed ({exc}).") from None


def child(element, name: str):
    return next((e for e in element if local(e.tag) == name), None)


def text_at(element, *path: str) -> str | None:
    for name in path:
        element = child(element, name) if element is not None else None
    return element.text.strip() if element is not None and element.text and element.text.strip() else None


def openrosa_response(message: str, nature: str = "submit_success") -> str:
    return (f'<OpenRosaResponse xmlns="{RESPONSE_NS}"><message nature="{nature}">{escape(message)}</message>'
            "</OpenRosaResponse>")


def element(tag: str, text) -> str:
    return f"<{tag}>{escape(str(text))}</{tag}>"
