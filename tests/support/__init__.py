"""What the tests share, and nothing else imports: tests import these modules, never another test module.

agent_harness (the one way to start a real agent), fake_devices (the one way to serve a fake device), built_once
(session fixtures: the update kit, the wheel), console_fixtures and console_trust (the Qt console's fixtures and
the tests' console identity), updates (signed releases, tus, a device that trusts an authority), and smaller helpers.
"""
