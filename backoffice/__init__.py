"""The legal-aid service behind the calls: tickets, complaints, legal-aid pre-screen, appointments,
follow-up visits, statistics and staffing. Rules are pure; storage comes from store/."""
