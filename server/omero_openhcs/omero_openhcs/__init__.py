"""omero_openhcs: an OMERO.web app that runs openhcs-nb pipelines on plates.

Users pick a saved pipeline ("preset") for a plate, launch it as themselves
and watch the same live plate viewer the notebook shows. The app never loads
or runs pipeline code: it relays to the openhcs execution server through
``openhcs_nb``'s client, with its own CurveZMQ key (a web front end) and the
user's OMERO session, and the execution server decides what is allowed.

Enable it with ``omero config append omero.web.apps '"omero_openhcs"'``
(see ``docs/omero-web.md``).
"""

__version__ = "0.1.0"
