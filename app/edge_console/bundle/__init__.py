"""`edge-bundle`: the release tooling of an offline signing machine. Never Qt, never a network.

    authority.py   the release authority's folder: its keys (owner-only) and its TUF root and targets metadata;
                   signing a bundle into a release file; key rotation and revocation
    build.py       model + golden frames (images, or .edgeframe files a console saved from a device) + model card
                   -> a bundle, the golden detections recorded by running them
    demo.py        a throwaway authority and a parts-v2 release for the demo and the tests
    cli.py         the command line: keygen, build, sign, verify, inspect, rotate
    summaries.py   what the command line tells a person: build's progress, verify's verdict (--json: the data)
    kit_sums.py    the offline kit's SHA256SUMS, signed by the authority, and their check on the site
"""
