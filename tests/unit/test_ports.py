import socket

from driftloop.ports import free_ports


def test_ports_asked_for_together_are_distinct_and_bindable():
    ports = free_ports(40)
    assert len(set(ports)) == 40
    for port in ports[:5]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))
